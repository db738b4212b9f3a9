"""The GPU engine without transformers: all-MiniLM-L6-v2's BERT layers as PyTorch's own
``nn.TransformerEncoder``, whose inference fast path runs fused kernels (one op per
layer, SDPA attention) on nested tensors, so padding costs nothing; then
sentence-transformers' mean pooling and L2 normalisation.

Why a second torch engine: importing transformers takes 7 s on the GPU host (measured:
`bench/gpu_embeddings.sh`, "import transformers 7.06s" of an 11.7 s cold start), and a
wake from zero pays every second of it. PyTorch ships the same post-norm encoder layer
BERT uses (GELU, LayerNorm after each residual); only the weight names differ, mapped
below. Embeddings (word + position + token type, LayerNorm) are three lookups.

With ``cuda_graphs`` (the service's default on CUDA) batches of up to 128 rows replay a
CUDA graph of the same layers without nested tensors (building one syncs with the host,
which a graph cannot hold): see gpuplane.inference.cuda_graphs. A capture that fails
turns graphs off for the process, logged, and the nested path answers."""

from __future__ import annotations

import copy
import logging
import warnings
from pathlib import Path
from typing import Any

from gpuplane.inference.cuda_graphs import GraphedForward
from gpuplane.inference.model import Batch, EncoderConfig
from gpuplane.inference.torch_common import (
    mean_pooled_unit_vectors,
    on_device,
    unit_vectors_on_device,
)
from gpuplane.inference.weights import WeightsError

log = logging.getLogger("gpuplane.inference")


class TorchEncoderEngine:
    def __init__(
        self,
        directory: Path,
        config: EncoderConfig,
        device: str,
        dtype: str,
        *,
        cuda_graphs: bool = False,
        nested: bool = True,
    ) -> None:
        import torch  # noqa: PLC0415 - the GPU image's dependency only
        from safetensors.torch import load_file  # noqa: PLC0415

        # The fast path builds nested tensors from the padding mask, and torch warns on
        # every first use that their API is a prototype; the output is a padded tensor.
        warnings.filterwarnings("ignore", message="The PyTorch API of nested tensors")

        self.torch = torch
        try:
            weights = load_file(str(directory / "model.safetensors"), device="cpu")
        except (OSError, ValueError) as error:
            raise WeightsError(f"{directory / 'model.safetensors'}: {error}") from error
        weights = {name.removeprefix("bert."): tensor for name, tensor in weights.items()}
        try:
            self.encoder = encoder_from(torch, weights, config)
            self.embeddings = _Embeddings(torch, weights, config)
        except KeyError as error:
            raise WeightsError(f"model.safetensors lacks {error}") from error
        kind = getattr(torch, dtype)
        self.encoder = self.encoder.to(device=device, dtype=kind).eval()
        self.embeddings = self.embeddings.to(device=device, dtype=kind).eval()
        self.device = device
        self.dtype = dtype
        # The same layers without nested tensors: for CUDA graphs, and for measuring.
        self.dense = dense_twin(self.encoder)
        if not nested:
            self.encoder = self.dense
        self.graphed = (
            GraphedForward(torch, self._dense_forward, device)
            if cuda_graphs and device == "cuda"
            else None
        )
        how = ", CUDA graphs" if self.graphed is not None else ""
        self.device_name = (
            f"{torch.cuda.get_device_name(0)} (torch TransformerEncoder, {dtype}{how})"
            if device == "cuda"
            else f"cpu (torch TransformerEncoder, {dtype})"
        )
        self.dimensions = config.hidden
        # Nested tensors skip padding, but kernels are still chosen by the padded shape:
        # lengths in buckets of 16 on CUDA, each warmed at start (model.warm_shapes).
        self.length_multiple = 16 if device == "cuda" else 1

    def embed(self, batch: Batch) -> Any:
        torch = self.torch
        with torch.inference_mode():
            if self.graphed is not None:
                vectors = self._replayed(self.graphed, batch)
                if vectors is not None:
                    return vectors
            ids, mask, _ = on_device(torch, batch, self.device)
            hidden = self.encoder(self.embeddings(ids), src_key_padding_mask=mask == 0)
            return mean_pooled_unit_vectors(torch, hidden, mask)

    def _replayed(self, graphed: GraphedForward, batch: Batch) -> Any | None:
        try:
            return graphed(batch.ids, batch.mask)
        except RuntimeError as error:
            log.warning("CUDA graphs off: capturing %s failed: %s", batch.ids.shape, error)
            self.graphed = None
            self.device_name = self.device_name.replace(", CUDA graphs", "")
            return None

    def _dense_forward(self, ids: Any, mask: Any) -> Any:
        hidden = self.dense(self.embeddings(ids), src_key_padding_mask=mask == 0)
        return unit_vectors_on_device(self.torch, hidden, mask)


def dense_twin(encoder: Any) -> Any:
    """``encoder`` sharing its layers, that never builds nested tensors."""
    twin = copy.copy(encoder)  # a new attribute dict; the same layer modules
    twin.enable_nested_tensor = False
    twin.use_nested_tensor = False
    return twin


def encoder_from(torch: Any, w: dict[str, Any], config: EncoderConfig) -> Any:
    """``nn.TransformerEncoder`` holding BERT's layers: post-norm, exact GELU, no dropout."""
    nn = torch.nn
    intermediate = int(w["encoder.layer.0.intermediate.dense.weight"].shape[0])
    layer = nn.TransformerEncoderLayer(
        d_model=config.hidden, nhead=config.heads, dim_feedforward=intermediate,
        dropout=0.0, activation="gelu", layer_norm_eps=config.eps, batch_first=True,
        norm_first=False,
    )  # fmt: skip
    encoder = nn.TransformerEncoder(layer, config.layers, enable_nested_tensor=True)
    with torch.no_grad():
        for index, target in enumerate(encoder.layers):
            prefix = f"encoder.layer.{index}."

            def get(name: str, prefix: str = prefix) -> Any:
                return w[prefix + name]

            attention = target.self_attn
            attention.in_proj_weight.copy_(
                torch.cat([get(f"attention.self.{p}.weight") for p in ("query", "key", "value")])
            )
            attention.in_proj_bias.copy_(
                torch.cat([get(f"attention.self.{p}.bias") for p in ("query", "key", "value")])
            )
            pairs = (
                (attention.out_proj, "attention.output.dense"),
                (target.norm1, "attention.output.LayerNorm"),
                (target.linear1, "intermediate.dense"),
                (target.linear2, "output.dense"),
                (target.norm2, "output.LayerNorm"),
            )
            for module, name in pairs:
                module.weight.copy_(get(f"{name}.weight"))
                module.bias.copy_(get(f"{name}.bias"))
    return encoder


class _Embeddings:
    """Word + position + token type (0: one sequence per text), then LayerNorm."""

    def __init__(self, torch: Any, w: dict[str, Any], config: EncoderConfig) -> None:
        nn = torch.nn
        self.torch = torch
        self.word = nn.Embedding.from_pretrained(w["embeddings.word_embeddings.weight"])
        self.position = nn.Embedding.from_pretrained(w["embeddings.position_embeddings.weight"])
        self.token_type = w["embeddings.token_type_embeddings.weight"][0]
        self.norm = nn.LayerNorm(config.hidden, eps=config.eps)
        with torch.no_grad():
            self.norm.weight.copy_(w["embeddings.LayerNorm.weight"])
            self.norm.bias.copy_(w["embeddings.LayerNorm.bias"])

    def to(self, **where: Any) -> _Embeddings:
        self.word = self.word.to(**where)
        self.position = self.position.to(**where)
        self.token_type = self.token_type.to(**where)
        self.norm = self.norm.to(**where)
        return self

    def eval(self) -> _Embeddings:
        return self

    def __call__(self, ids: Any) -> Any:
        positions = self.torch.arange(ids.shape[1], device=ids.device)
        summed = self.word(ids) + self.position(positions)[None] + self.token_type
        return self.norm(summed)
