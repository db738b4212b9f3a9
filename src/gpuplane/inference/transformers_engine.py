"""The GPU engine: all-MiniLM-L6-v2 as transformers' ``BertModel`` on torch, with
PyTorch's fused scaled-dot-product attention (SDPA: flash or memory-efficient kernels) in
half precision, then sentence-transformers' mean pooling and L2 normalisation.

The kernels are the field's (transformers, torch), not ours; only the pooling, a few lines
sentence-transformers defines for this model, is written here. Torch and transformers
are imported only here: the CPU image has neither (bench/embedding_engines.py measures
both engines on the same texts)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from gpuplane.inference.model import Batch
from gpuplane.inference.torch_common import mean_pooled_unit_vectors, on_device
from gpuplane.inference.weights import WeightsError

DTYPES = ("float32", "float16", "bfloat16")


def default_dtype(device: str) -> str:
    """Half precision on CUDA (tensor cores; cosine to the fp32 reference stays above
    0.999), float32 on the CPU."""
    return "float16" if device == "cuda" else "float32"


class TransformersEngine:
    def __init__(self, directory: Path, device: str, dtype: str) -> None:
        import torch  # noqa: PLC0415 - the GPU image's dependency only
        from transformers import BertModel  # noqa: PLC0415

        if dtype not in DTYPES:
            raise ValueError(f"dtype must be one of {', '.join(DTYPES)}, not {dtype!r}")
        self.torch = torch
        self.dtype = dtype
        try:
            model = BertModel.from_pretrained(
                str(directory),
                attn_implementation="sdpa",
                dtype=getattr(torch, dtype),
                add_pooling_layer=False,
            )
        except (OSError, ValueError) as error:
            raise WeightsError(f"{directory}: transformers cannot load it ({error})") from error
        self.model = model.to(device).eval()
        self.device = device
        self.device_name = (
            f"{torch.cuda.get_device_name(0)} (transformers, {dtype})"
            if device == "cuda"
            else f"cpu (transformers, {dtype})"
        )
        self.dimensions = int(model.config.hidden_size)
        # On CUDA lengths come in buckets of 16 tokens: a handful of shapes whose kernels
        # are chosen once (model.warm_shapes at start), at most 15 padding tokens a text.
        self.length_multiple = 16 if device == "cuda" else 1

    def embed(self, batch: Batch) -> Any:
        torch = self.torch
        with torch.inference_mode():
            ids, mask, types = on_device(torch, batch, self.device)
            hidden = self.model(
                input_ids=ids, attention_mask=mask, token_type_ids=types
            ).last_hidden_state
            return mean_pooled_unit_vectors(torch, hidden, mask)
