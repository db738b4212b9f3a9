"""The handful of tensor operations the encoder needs, over numpy (CPU) or torch (CPU or
CUDA). The model is written once against :class:`Ops`; only these primitives differ.

Why not torch everywhere: torch's wheels for this platform weigh gigabytes with their CUDA
libraries, too much for a CPU image; numpy is a few megabytes. The GPU host already has
torch."""

from __future__ import annotations

import math
from typing import Any, Protocol

Array = Any  # numpy.ndarray or torch.Tensor: the encoder never looks inside


class Ops(Protocol):
    device: str
    """``cpu`` or ``cuda``: what the metrics report."""
    device_name: str

    def from_host(self, array: Any) -> Array: ...
    def to_host(self, array: Array) -> Any: ...
    def linear(self, x: Array, weight: Array, bias: Array) -> Array: ...
    def layer_norm(self, x: Array, weight: Array, bias: Array, eps: float) -> Array: ...
    def softmax(self, x: Array) -> Array: ...
    def gelu(self, x: Array) -> Array: ...
    def take(self, table: Array, ids: Array) -> Array: ...
    def mean_pool_normalized(self, x: Array, mask: Array) -> Array: ...
    def synchronize(self) -> None: ...


class NumpyOps:
    device = "cpu"
    device_name = "cpu (numpy)"

    def __init__(self) -> None:
        import numpy  # noqa: PLC0415 - imported where the backend is chosen

        self.np = numpy

    def from_host(self, array: Any) -> Array:
        return self.np.ascontiguousarray(array)

    def to_host(self, array: Array) -> Any:
        return array

    def linear(self, x: Array, weight: Array, bias: Array) -> Array:
        # Weights are stored (out, in) as in the checkpoint; x @ W^T + b.
        return x @ weight.T + bias

    def layer_norm(self, x: Array, weight: Array, bias: Array, eps: float) -> Array:
        mean = x.mean(axis=-1, keepdims=True)
        centred = x - mean
        variance = (centred * centred).mean(axis=-1, keepdims=True)
        return centred / self.np.sqrt(variance + eps) * weight + bias

    def softmax(self, x: Array) -> Array:
        shifted = self.np.exp(x - x.max(axis=-1, keepdims=True))
        return shifted / shifted.sum(axis=-1, keepdims=True)

    def gelu(self, x: Array) -> Array:
        # BERT's exact GELU, x * Phi(x); numpy has no erf, so the tanh form is not used
        # either (it differs in the 4th decimal): math.erf vectorised is too slow, so erf
        # comes from the Abramowitz-Stegun 7.1.26 approximation (|error| < 1.5e-7).
        np = self.np
        z = x / math.sqrt(2.0)
        sign = np.sign(z)
        a = np.abs(z)
        t = 1.0 / (1.0 + 0.3275911 * a)
        poly = t * (
            0.254829592
            + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429)))
        )
        erf = sign * (1.0 - poly * np.exp(-a * a))
        return 0.5 * x * (1.0 + erf)

    def take(self, table: Array, ids: Array) -> Array:
        return table[ids]

    def mean_pool_normalized(self, x: Array, mask: Array) -> Array:
        weights = mask[..., None]
        summed = (x * weights).sum(axis=1)
        pooled = summed / self.np.maximum(weights.sum(axis=1), 1e-9)
        norms = self.np.linalg.norm(pooled, axis=-1, keepdims=True)
        return pooled / self.np.maximum(norms, 1e-12)

    def synchronize(self) -> None:
        return None


class TorchOps:
    def __init__(self, device: str) -> None:
        import torch  # noqa: PLC0415 - only where torch is the backend

        self.torch = torch
        self.device = device
        self.device_name = torch.cuda.get_device_name(0) if device == "cuda" else "cpu (torch)"

    def from_host(self, array: Any) -> Array:
        # A copy: the weights are a read-only mapping of the file.
        return self.torch.tensor(array, device=self.device)

    def to_host(self, array: Array) -> Any:
        return array.float().cpu().numpy()

    def linear(self, x: Array, weight: Array, bias: Array) -> Array:
        return self.torch.nn.functional.linear(x, weight, bias)

    def layer_norm(self, x: Array, weight: Array, bias: Array, eps: float) -> Array:
        return self.torch.nn.functional.layer_norm(x, (x.shape[-1],), weight, bias, eps)

    def softmax(self, x: Array) -> Array:
        return self.torch.softmax(x, dim=-1)

    def gelu(self, x: Array) -> Array:
        return self.torch.nn.functional.gelu(x)

    def take(self, table: Array, ids: Array) -> Array:
        return table[ids]

    def mean_pool_normalized(self, x: Array, mask: Array) -> Array:
        weights = mask.unsqueeze(-1)
        pooled = (x * weights).sum(dim=1) / weights.sum(dim=1).clamp(min=1e-9)
        return self.torch.nn.functional.normalize(pooled, p=2.0, dim=-1)

    def synchronize(self) -> None:
        if self.device == "cuda":
            self.torch.cuda.synchronize()


def choose_ops(device: str) -> Ops:
    """``auto``: CUDA through torch when torch sees a GPU, else numpy on the CPU.
    ``cuda`` fails clearly when there is none; ``cpu`` is numpy."""
    if device not in {"auto", "cpu", "cuda"}:
        raise ValueError(f"device must be auto, cpu or cuda, not {device!r}")
    if device == "cpu":
        return NumpyOps()
    try:
        import torch  # noqa: PLC0415
    except ImportError as error:
        if device == "cuda":
            raise RuntimeError(
                f"--device cuda needs torch, which is not installed ({error})"
            ) from error
        return NumpyOps()
    if torch.cuda.is_available():
        return TorchOps("cuda")
    if device == "cuda":
        raise RuntimeError("--device cuda: torch sees no CUDA device")
    return NumpyOps()
