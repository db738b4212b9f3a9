"""The embeddings API fuzzed over HTTP on loopback, with the real packaged model: random
bytes, JSON-like values, and mutations of a valid request (inputs of every type, nesting,
models, formats, dimensions). Every answer is 200 with one vector per input, or 400, 404,
413 or 503 in OpenAI's error shape; never a 500."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx2
import pytest
from aiohttp import web

from gpuplane.inference.batching import Batcher
from gpuplane.inference.metrics import ServiceMetrics
from gpuplane.inference.model import packaged_embedder
from gpuplane.inference.server import ServiceState, make_app
from tests.unit.fuzz.background_loop import BackgroundLoop
from tests.unit.fuzz.body_targets import assert_openai_error, body_tests

VALID = {"input": ["a sentence", "another"], "model": "all-MiniLM-L6-v2"}
HTTP = httpx2.Client(trust_env=False, timeout=30)


@pytest.fixture(scope="module")
def url() -> Iterator[str]:
    embed = packaged_embedder()
    background = BackgroundLoop()
    state = ServiceState(ServiceMetrics("ml", "inference"), dimensions=384, ready=True)
    state.batcher = Batcher(embed, 32, 0.002, 64)

    async def start() -> tuple[web.AppRunner, int]:
        assert state.batcher is not None
        state.tasks.append(background.loop.create_task(state.batcher.run()))
        runner = web.AppRunner(make_app(state), access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        return runner, site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    runner, port = background.run(start())
    yield f"http://127.0.0.1:{port}/v1/embeddings"
    background.run(runner.cleanup())
    background.close()


def check(url: str, body: bytes, sent: Any) -> None:
    answer = HTTP.post(url, content=body, headers={"Content-Type": "application/json"})
    assert answer.status_code in (200, 400, 404, 413, 503), answer.text[:300]
    document = answer.json()
    if answer.status_code == 200:
        inputs = sent["input"]
        count = (
            len(inputs) if isinstance(inputs, list) and inputs and isinstance(inputs[0], str) else 1
        )
        assert len(document["data"]) == count
        return
    assert_openai_error(document)


(test_random_bytes, test_json_values, test_mutated_requests, test_nesting_of_any_depth) = (
    body_tests(check, VALID)
)
