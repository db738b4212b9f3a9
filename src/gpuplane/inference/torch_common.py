"""What both torch engines share: the token batch onto the device, and
sentence-transformers' pooling for this model (the mean of the token vectors the mask
keeps, then L2 normalisation)."""

from __future__ import annotations

from typing import Any

from gpuplane.inference.model import Batch


def on_device(torch: Any, batch: Batch, device: str) -> tuple[Any, Any, Any]:
    """(ids, mask, token types) as tensors on ``device`` (copies queued, not awaited)."""
    ids, mask, types = (
        torch.from_numpy(array).to(device, non_blocking=True)
        for array in (batch.ids, batch.mask, batch.types)
    )
    return ids, mask, types


def mean_pooled_unit_vectors(torch: Any, hidden: Any, mask: Any) -> Any:
    """(batch, dimensions) float32 unit vectors on the host."""
    return unit_vectors_on_device(torch, hidden, mask).cpu().numpy()


def unit_vectors_on_device(torch: Any, hidden: Any, mask: Any) -> Any:
    """(batch, dimensions) float32 unit vectors, left on the device."""
    # In float32: a sum over up to 256 tokens in half precision loses digits.
    weights = mask.unsqueeze(-1).to(torch.float32)
    summed = (hidden.to(torch.float32) * weights).sum(dim=1)
    pooled = summed / weights.sum(dim=1).clamp(min=1e-9)
    return torch.nn.functional.normalize(pooled, p=2.0, dim=-1)
