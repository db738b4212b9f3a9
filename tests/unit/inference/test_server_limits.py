"""The embeddings server's limits on hostile input, over HTTP on loopback with the real
packaged model: JSON nested past the parser's depth is a 400 (it was a 500); a request
with more inputs than the server can ever queue is a 413 naming the limit (it was a 503
"retry shortly" forever); request bodies in flight beyond the byte budget are refused
with 503 + Retry-After, and the budget is given back once a body is read."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from gpuplane.inference.batching import Batcher
from gpuplane.inference.metrics import ServiceMetrics
from gpuplane.inference.model import Embed, packaged_embedder
from gpuplane.inference.server import ServiceState, make_app


@pytest.fixture(scope="module")
def embed() -> Embed:
    return packaged_embedder()


async def served(state: ServiceState) -> AsyncIterator[str]:
    runner = web.AppRunner(make_app(state), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


def ready_state(embed: Any, max_queue: int = 64, budget: int | None = None) -> ServiceState:
    state = ServiceState(ServiceMetrics("ml", "inference"), dimensions=384, ready=True)
    state.batcher = Batcher(embed, 32, 0.002, max_queue)
    if budget is not None:
        state.body_budget = budget
    return state


def post_all(state: ServiceState, bodies: list[bytes]) -> list[tuple[int, dict[str, Any]]]:
    async def go() -> list[tuple[int, dict[str, Any]]]:
        assert state.batcher is not None
        worker = asyncio.create_task(state.batcher.run())
        answers = []
        async for url in served(state):
            async with aiohttp.ClientSession() as http:
                for body in bodies:
                    async with http.post(f"{url}/v1/embeddings", data=body) as answer:
                        answers.append((answer.status, await answer.json()))
        worker.cancel()
        return answers

    return asyncio.run(go())


def test_deep_json_is_a_400_not_a_500(embed: Any) -> None:
    ((status, body),) = post_all(ready_state(embed), [b"[" * 100_000])
    assert status == 400
    assert "nested too deep" in body["error"]["message"]


def test_more_inputs_than_the_queue_holds_is_a_413_naming_the_limit(embed: Any) -> None:
    too_many = json.dumps({"input": ["a"] * 65, "model": "all-MiniLM-L6-v2"}).encode()
    fits = json.dumps({"input": ["a"] * 64, "model": "all-MiniLM-L6-v2"}).encode()
    (status, body), (ok, answer) = post_all(ready_state(embed, max_queue=64), [too_many, fits])
    assert status == 413
    assert body["error"]["param"] == "input"
    assert "queues at most 64" in body["error"]["message"]
    assert ok == 200 and len(answer["data"]) == 64


def test_bodies_past_the_in_flight_budget_are_refused_then_it_is_given_back(
    embed: Any,
) -> None:
    body = json.dumps({"input": "hello", "model": "all-MiniLM-L6-v2"}).encode()
    state = ready_state(embed, budget=len(body) - 1)
    ((refused, error),) = post_all(state, [body])
    assert refused == 503 and error["error"]["code"] == "body_budget"
    state = ready_state(embed, budget=len(body))
    answers = post_all(state, [body, body, body])  # one at a time: each fits once read
    assert [status for status, _ in answers] == [200, 200, 200]
    assert state.body_bytes == 0
