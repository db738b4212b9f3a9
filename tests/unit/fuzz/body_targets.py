"""The body fuzz targets every JSON API shares (random bytes, JSON-like values, mutations
of a valid request, nesting of any depth), built around one API's ``check(url, body,
sent)``: each API module takes them as its own tests."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from tests.unit.fuzz.strategies import json_like, mutated

Check = Callable[[str, bytes, Any], None]


def assert_openai_error(document: Any) -> None:
    error = document["error"]
    assert isinstance(error["message"], str) and error["message"]
    assert set(error) == {"message", "type", "param", "code"}


def body_tests(check: Check, valid: dict[str, Any]) -> tuple[Callable[..., None], ...]:
    """The targets, ``valid`` the request the mutations start from."""

    @given(document=mutated(valid))
    def test_mutated_requests(url: str, document: Any) -> None:
        check(url, json.dumps(document).encode(), document)

    @given(body=st.binary(max_size=300))
    def test_random_bytes(url: str, body: bytes) -> None:
        check(url, body, None)

    @given(document=json_like)
    def test_json_values(url: str, document: Any) -> None:
        check(url, json.dumps(document).encode(), document)

    @given(depth=st.integers(min_value=1, max_value=200_000))
    def test_nesting_of_any_depth(url: str, depth: int) -> None:
        check(url, b"[" * depth + b"]" * depth, None)

    return test_random_bytes, test_json_values, test_mutated_requests, test_nesting_of_any_depth
