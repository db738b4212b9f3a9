"""all-MiniLM-L6-v2 (a BERT encoder) as an ONNX graph, written from its safetensors
weights with ONNX's own graph helpers, for ONNX Runtime on the CPU. The model ships no
ONNX file and exporting one needs torch (gigabytes the CPU image leaves out); the graph is
the same computation as the numpy engine (model.Encoder), in ONNX's standard operators
(opset 20: LayerNormalization and Gelu are single operators), then mean pooling over the
mask and L2 normalisation, so the session returns the service's vectors directly.

Inputs ``ids`` and ``mask``, (batch, length) int64; output ``vectors``, (batch, hidden)
float32 unit vectors."""

from __future__ import annotations

import math
from typing import Any

from gpuplane.inference.model import EncoderConfig, needed_weight_names

OPSET = 20  # Gelu became a standard operator in 20
IR_VERSION = 10  # what opset 20 needs; ONNX Runtime 1.20 and later read it


class _Graph:
    """Nodes and initialisers, each output named in order (t1, t2, ...), over the model's
    float32 weights ``w``."""

    def __init__(self, onnx: Any, w: dict[str, Any], config: EncoderConfig) -> None:
        import numpy  # noqa: PLC0415

        self.onnx = onnx
        self.numpy = numpy
        self.w = w
        self.config = config
        self.nodes: list[Any] = []
        self.initialisers: list[Any] = []
        self.count = 0

    def constant(self, name: str, value: Any, dtype: str = "float32") -> str:
        array = self.numpy.asarray(value, dtype=dtype)
        self.initialisers.append(self.onnx.numpy_helper.from_array(array, name))
        return name

    def op(self, kind: str, *inputs: str, **attributes: Any) -> str:
        self.count += 1
        output = f"t{self.count}"
        self.nodes.append(self.onnx.helper.make_node(kind, list(inputs), [output], **attributes))
        return output

    def layer_norm(self, x: str, prefix: str) -> str:
        scale = self.constant(prefix + ".weight", self.w[prefix + ".weight"])
        shift = self.constant(prefix + ".bias", self.w[prefix + ".bias"])
        return self.op("LayerNormalization", x, scale, shift, axis=-1, epsilon=self.config.eps)

    def linear(self, x: str, prefix: str) -> str:
        # Stored as (out, in) like torch's Linear: transposed once here, not per call.
        matrix = self.constant(prefix + ".weight_t", self.w[prefix + ".weight"].T)
        bias = self.constant(prefix + ".bias", self.w[prefix + ".bias"])
        return self.op("Add", self.op("MatMul", x, matrix), bias)


def encoder_graph(onnx: Any, weights: dict[str, Any], config: EncoderConfig) -> Any:
    """The ModelProto of the encoder with pooling; ``weights`` by their BERT names."""
    import numpy  # noqa: PLC0415

    missing = [name for name in needed_weight_names(config) if name not in weights]
    if missing:
        raise KeyError(missing[0])
    w = {name: numpy.asarray(weights[name], dtype=numpy.float32) for name in weights}
    g = _Graph(onnx, w, config)
    mask = g.op("Cast", "mask", to=onnx.TensorProto.FLOAT)
    x = _embedded(g)
    # Padding positions get -1e9 before the softmax (as the numpy engine): no attention.
    masked_out = g.op("Sub", g.constant("one_f", 1.0), mask)
    bias = g.op(
        "Unsqueeze",
        g.op("Mul", masked_out, g.constant("minus_1e9", -1e9)),
        g.constant("axes_1_2", [1, 2], "int64"),
    )
    for layer in range(config.layers):
        x = _layer(g, x, bias, f"encoder.layer.{layer}.")
    # sentence-transformers' pooling: the mean of the kept token vectors, then unit length.
    kept = g.op("Mul", x, g.op("Unsqueeze", mask, g.constant("axis_2", [2], "int64")))
    axis_1 = g.constant("axes_1", [1], "int64")
    summed = g.op("ReduceSum", kept, axis_1, keepdims=0)
    counted = g.op("ReduceSum", mask, axis_1, keepdims=1)
    pooled = g.op("Div", summed, g.op("Max", counted, g.constant("tiny", 1e-9)))
    g.nodes.append(onnx.helper.make_node("LpNormalization", [pooled], ["vectors"], axis=-1, p=2))
    helper, tensor = onnx.helper, onnx.TensorProto
    graph = helper.make_graph(
        g.nodes, "all-MiniLM-L6-v2",
        [helper.make_tensor_value_info("ids", tensor.INT64, ["batch", "length"]),
         helper.make_tensor_value_info("mask", tensor.INT64, ["batch", "length"])],
        [helper.make_tensor_value_info("vectors", tensor.FLOAT, ["batch", config.hidden])],
        g.initialisers,
    )  # fmt: skip
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
    model.ir_version = IR_VERSION
    onnx.checker.check_model(model)
    return model


def _embedded(g: _Graph) -> str:
    """Word + position + token type 0 (one sequence per text), then LayerNorm."""
    w = g.w
    length = g.op("Gather", g.op("Shape", "ids"), g.constant("axis_1", 1, "int64"))
    zero, one = g.constant("zero", 0, "int64"), g.constant("one", 1, "int64")
    positions = g.op("Range", zero, length, one)
    words = g.op("Gather", g.constant("words", w["embeddings.word_embeddings.weight"]), "ids")
    table = g.constant("positions", w["embeddings.position_embeddings.weight"])
    placed = g.op("Gather", table, positions)
    token_type = g.constant("token_type_0", w["embeddings.token_type_embeddings.weight"][0])
    return g.layer_norm(g.op("Add", g.op("Add", words, placed), token_type), "embeddings.LayerNorm")


def _layer(g: _Graph, x: str, bias: str, prefix: str) -> str:
    """One post-norm BERT layer: self-attention, then the feed-forward block."""
    heads = g.config.heads
    head = g.config.hidden // heads
    split = g.constant(prefix + "split_heads", [0, 0, heads, head], "int64")
    join = g.constant(prefix + "join_heads", [0, 0, g.config.hidden], "int64")

    def by_head(part: str, order: list[int]) -> str:
        return g.op("Transpose", g.op("Reshape", g.linear(x, prefix + part), split), perm=order)

    query = by_head("attention.self.query", [0, 2, 1, 3])
    key_t = by_head("attention.self.key", [0, 2, 3, 1])  # transposed for the product
    value = by_head("attention.self.value", [0, 2, 1, 3])
    scale = g.constant(prefix + "scale", 1.0 / math.sqrt(head))
    scores = g.op("Add", g.op("Mul", g.op("MatMul", query, key_t), scale), bias)
    context = g.op("MatMul", g.op("Softmax", scores, axis=-1), value)
    context = g.op("Reshape", g.op("Transpose", context, perm=[0, 2, 1, 3]), join)
    attended = g.linear(context, prefix + "attention.output.dense")
    x = g.layer_norm(g.op("Add", attended, x), prefix + "attention.output.LayerNorm")
    inner = g.op("Gelu", g.linear(x, prefix + "intermediate.dense"))  # exact (erf) GELU
    out = g.linear(inner, prefix + "output.dense")
    return g.layer_norm(g.op("Add", out, x), prefix + "output.LayerNorm")
