"""The OpenAI embeddings request and response shapes (pure: no I/O, no model).

Accepted: ``input`` a string or a list of strings (token-id arrays are refused clearly: the
tokenizer is the server's), ``model`` this server's model, ``encoding_format`` ``float`` or
``base64``, ``dimensions`` only the model's own. Errors carry OpenAI's
``{"error": {"message", "type", "param", "code"}}`` shape."""

from __future__ import annotations

import base64
import struct
from dataclasses import dataclass
from typing import Any

from gpuplane.shared.openai_errors import ApiError, served_model

MAX_INPUTS = 2048  # OpenAI's own limit per request
MAX_INPUT_CHARS = 100_000
MODEL_ALIASES = ("all-MiniLM-L6-v2", "sentence-transformers/all-MiniLM-L6-v2")


@dataclass(frozen=True)
class EmbeddingsRequest:
    texts: tuple[str, ...]
    model: str
    base64: bool


def _texts(raw: Any) -> tuple[str, ...]:
    if isinstance(raw, str):
        raw = [raw]
    if not isinstance(raw, list) or not raw:
        raise ApiError(
            400, "'input' must be a non-empty string or a non-empty array of strings", "input"
        )
    if len(raw) > MAX_INPUTS:
        raise ApiError(
            400, f"'input' has {len(raw)} items; at most {MAX_INPUTS} per request", "input"
        )
    for index, item in enumerate(raw):
        if isinstance(item, int | list) and not isinstance(item, bool):
            raise ApiError(
                400, f"'input[{index}]': token arrays are not accepted, send text", "input"
            )
        if not isinstance(item, str):
            raise ApiError(
                400, f"'input[{index}]' must be a string, not {type(item).__name__}", "input"
            )
        if not item.strip():
            raise ApiError(400, f"'input[{index}]' is empty", "input")
        if len(item) > MAX_INPUT_CHARS:
            raise ApiError(
                400,
                f"'input[{index}]' has {len(item)} characters; at most {MAX_INPUT_CHARS}",
                "input",
            )
    return tuple(raw)


def parse_request(body: Any, dimensions: int) -> EmbeddingsRequest:
    model = served_model(body, MODEL_ALIASES)
    encoding = body.get("encoding_format", "float")
    if encoding not in {"float", "base64"}:
        raise ApiError(400, "'encoding_format' must be 'float' or 'base64'", "encoding_format")
    wanted = body.get("dimensions")
    if wanted is not None and wanted != dimensions:
        raise ApiError(400, f"'dimensions': this model gives {dimensions} only", "dimensions")
    if "input" not in body:
        raise ApiError(400, "'input' is required", "input")
    return EmbeddingsRequest(_texts(body["input"]), model, encoding == "base64")


def _encoded(vector: Any, as_base64: bool) -> Any:
    """base64 of the little-endian float32 values (OpenAI's ``encoding_format``), or the
    vector as it is: a float32 array the response encoder writes whole (orjson), a list of
    floats elsewhere."""
    if not as_base64:
        return vector
    tobytes = getattr(vector, "tobytes", None)
    if tobytes is not None and str(getattr(vector, "dtype", "")) == "float32":
        raw = tobytes()  # numpy's native order is little-endian on every host we run
    else:
        values = [float(v) for v in vector]
        raw = struct.pack(f"<{len(values)}f", *values)
    return base64.b64encode(raw).decode()


def response_body(request: EmbeddingsRequest, vectors: list[Any], tokens: int) -> dict[str, Any]:
    """The response object; its float vectors stay arrays (see :func:`_encoded`)."""
    return {
        "object": "list",
        "data": [
            {"object": "embedding", "index": i, "embedding": _encoded(v, request.base64)}
            for i, v in enumerate(vectors)
        ],
        "model": request.model,
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
    }
