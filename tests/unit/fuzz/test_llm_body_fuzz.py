"""The chat API fuzzed over HTTP on loopback, with the real packaged model on llama.cpp:
random bytes, JSON-like values, and mutations of a valid request (messages of every
shape, sampling values, stops, stream flags). Every answer is 200 (a whole answer, or
an event stream that ends in [DONE]) or 400, 404, 413 or 503 in OpenAI's error shape;
never a 500, and the service keeps answering."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx2
import pytest
from aiohttp import web

from gpuplane.llm.engines import packaged_model_dir
from gpuplane.llm.llama_cpp_engine import LlamaCppEngine
from gpuplane.llm.metrics import LlmMetrics
from gpuplane.llm.server import LlmState, make_app
from tests.unit.fuzz.background_loop import BackgroundLoop
from tests.unit.fuzz.body_targets import assert_openai_error, body_tests

VALID = {
    "model": "SmolLM2-135M-Instruct", "max_tokens": 4, "temperature": 0.5, "top_p": 0.9,
    "stop": ["\n"], "stream": False, "stream_options": {"include_usage": True},
    "messages": [{"role": "system", "content": "Be brief."},
                 {"role": "user", "content": [{"type": "text", "text": "Hi"}]}],
}  # fmt: skip
HTTP = httpx2.Client(trust_env=False, timeout=60)


@pytest.fixture(scope="module")
def url() -> Iterator[str]:
    background = BackgroundLoop()
    # At most 4 tokens an answer: a mutation asking for more is a 400, and a run stays short.
    state = LlmState(LlmMetrics("ml", "llm"), max_streams=2, max_waiting=4, max_tokens=4)

    async def start() -> tuple[web.AppRunner, int]:
        state.engine = LlamaCppEngine(packaged_model_dir(), background.loop, 512)
        state.ready = True
        runner = web.AppRunner(make_app(state), access_log=None, handler_cancellation=True)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        return runner, site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    runner, port = background.run(start())
    yield f"http://127.0.0.1:{port}/v1/chat/completions"
    background.run(runner.cleanup())
    assert state.engine is not None
    state.engine.close()
    background.close()


def check(url: str, body: bytes, sent: Any) -> None:
    answer = HTTP.post(url, content=body, headers={"Content-Type": "application/json"})
    assert answer.status_code in (200, 400, 404, 413, 503), answer.text[:300]
    if answer.status_code == 200 and answer.headers["content-type"].startswith("text/event-stream"):
        events = [line[6:] for line in answer.text.splitlines() if line.startswith("data: ")]
        assert events[-1] == "[DONE]"
        for event in events[:-1]:
            assert "error" not in json.loads(event), event
        return
    document = answer.json()
    if answer.status_code == 200:
        assert document["choices"][0]["finish_reason"] in ("stop", "length")
        return
    assert_openai_error(document)


(test_random_bytes, test_json_values, test_mutated_requests, test_nesting_of_any_depth) = (
    body_tests(check, VALID)
)
