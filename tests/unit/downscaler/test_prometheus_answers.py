"""Prometheus answers as the operator reads them: values per target, and every kind of
wrong answer (not JSON, an error, a non-vector, a malformed vector, nobody listening) as
an error or unreachable, never an exception."""

from __future__ import annotations

import asyncio
import json
import socket

import pytest

from gpuplane.downscaler.prometheus import PrometheusClient, answer_of


def vector(*series: object) -> str:
    return json.dumps(
        {"status": "success", "data": {"resultType": "vector", "result": list(series)}}
    )


def test_a_vector_keyed_by_the_target_label() -> None:
    text = vector(
        {"metric": {"deployment": "llm"}, "value": [1_700_000_000, "0.5"]},
        {"metric": {"pod": "no-label"}, "value": [1_700_000_000, "9"]},
        {"metric": {"deployment": "nan"}, "value": [1_700_000_000, "NaN"]},
    )
    answer = answer_of(200, text, "deployment")
    assert answer.error is None and set(answer.values) == {"llm"}
    assert answer.values["llm"][0] == 0.5


@pytest.mark.parametrize(
    ("status", "text", "expected"),
    [
        (200, "<html>", "not a Prometheus answer"),
        (200, "[1, 2]", "not a Prometheus answer"),
        (400, json.dumps({"status": "error", "error": "parse error at char 3"}), "parse error"),
        (503, json.dumps({"status": "error"}), "HTTP 503"),
        (200, json.dumps({"status": "success", "data": {"resultType": "matrix"}}), "matrix"),
        (200, json.dumps({"status": "success", "data": None}), "got None"),
        (200, vector({"metric": {"deployment": "x"}, "value": [1, "abc"]}), "malformed"),
        (200, vector({"metric": {"deployment": "x"}, "value": "oops"}), "malformed"),
    ],
)
def test_wrong_answers_are_errors(status: int, text: str, expected: str) -> None:
    answer = answer_of(status, text, "deployment")
    assert answer.values == {} and not answer.unreachable
    assert answer.error is not None and expected in answer.error


def test_nobody_listening_is_unreachable() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # closed again below: nothing listens there

    async def ask() -> object:
        client = PrometheusClient(f"http://127.0.0.1:{port}", timeout=2)
        try:
            return await client.query("up", "deployment")
        finally:
            await client.close()

    answer = asyncio.run(ask())
    assert getattr(answer, "unreachable", False) is True
