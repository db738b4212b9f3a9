from __future__ import annotations

import base64
import struct
from typing import Any

import pytest

from gpuplane.inference.api import ApiError, parse_request, response_body

MODEL = "all-MiniLM-L6-v2"


def error_of(body: Any) -> ApiError:
    with pytest.raises(ApiError) as caught:
        parse_request(body, 384)
    return caught.value


def test_a_string_and_a_list_of_strings_are_accepted() -> None:
    assert parse_request({"model": MODEL, "input": "hi"}, 384).texts == ("hi",)
    request = parse_request({"model": MODEL, "input": ["a", "b"], "dimensions": 384}, 384)
    assert request.texts == ("a", "b")
    assert not request.base64


@pytest.mark.parametrize(
    ("body", "param", "fragment"),
    [
        ({"model": MODEL}, "input", "'input' is required"),
        ({"model": MODEL, "input": ""}, "input", "'input[0]' is empty"),
        ({"model": MODEL, "input": []}, "input", "non-empty"),
        ({"model": MODEL, "input": [1, 2]}, "input", "token arrays"),
        ({"model": MODEL, "input": [[1, 2]]}, "input", "token arrays"),
        ({"model": MODEL, "input": ["ok", None]}, "input", "'input[1]' must be a string"),
        ({"input": "x"}, "model", "'model' is required"),
        ({"model": MODEL, "input": "x", "encoding_format": "hex"}, "encoding_format", "float"),
        ({"model": MODEL, "input": "x", "dimensions": 128}, "dimensions", "384"),
        ({"model": MODEL, "input": ["x"] * 2049}, "input", "at most 2048"),
    ],
)
def test_bad_requests_are_400_naming_the_field(body: Any, param: str, fragment: str) -> None:
    error = error_of(body)
    assert error.status == 400
    assert error.param == param
    assert fragment in error.message
    assert error.body()["error"]["type"] == "invalid_request_error"


def test_an_unknown_model_is_404_model_not_found() -> None:
    error = error_of({"model": "text-embedding-3-small", "input": "x"})
    assert (error.status, error.code) == (404, "model_not_found")


def test_a_body_that_is_not_an_object_is_400() -> None:
    assert error_of(["x"]).status == 400


def test_base64_is_little_endian_float32() -> None:
    request = parse_request({"model": MODEL, "input": "x", "encoding_format": "base64"}, 384)
    body = response_body(request, [[0.5, -1.0]], 3)
    packed = base64.b64decode(body["data"][0]["embedding"])
    assert struct.unpack("<2f", packed) == (0.5, -1.0)
    assert body["usage"] == {"prompt_tokens": 3, "total_tokens": 3}
