"""sentence-transformers' pooling for this model, on torch: the mean of the token vectors
the mask keeps, then L2 normalisation. Shared by both torch engines."""

from __future__ import annotations

from typing import Any


def mean_pooled_unit_vectors(torch: Any, hidden: Any, mask: Any) -> Any:
    """(batch, dimensions) float32 unit vectors on the host."""
    # In float32: a sum over up to 256 tokens in half precision loses digits.
    weights = mask.unsqueeze(-1).to(torch.float32)
    summed = (hidden.to(torch.float32) * weights).sum(dim=1)
    pooled = summed / weights.sum(dim=1).clamp(min=1e-9)
    return torch.nn.functional.normalize(pooled, p=2.0, dim=-1).cpu().numpy()
