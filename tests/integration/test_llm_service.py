"""The chat model service (gpuplane-llm) as a real process on 127.0.0.1 with its real model
(SmolLM2-135M-Instruct, llama.cpp on this CPU): OpenAI's shapes, streaming token by token,
stop sequences, bad input, capacity (503 + Retry-After), a client that leaves freeing its
slot at once, and the series the platform reads."""

from __future__ import annotations

import contextlib
import socket
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx2
import orjson
import pytest

from gpuplane.backends.local.services import free_port
from tests.integration.downscaler_kit import wait_for
from tests.integration.inference_kit import LLM, Service, running_service
from tests.integration.llm_kit import COUNTING, LONG, MODEL, chat, stream_chat


@pytest.fixture(scope="module")
def llm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    log = tmp_path_factory.mktemp("llm") / "llm.log"
    with running_service(log, "--max-streams=1", "--max-waiting=1", module=LLM) as service:
        yield service


@contextlib.contextmanager
def generating(
    service: Service, max_tokens: int
) -> Iterator[tuple[httpx2.Client, httpx2.Response]]:
    """A long streamed answer, its first event read: it holds a slot while inside."""
    body = chat(LONG, max_tokens=max_tokens, stream=True)
    with (
        httpx2.Client(trust_env=False, timeout=120) as http,
        http.stream("POST", f"{service.url}/v1/chat/completions", json=body) as answer,
    ):
        assert answer.status_code == 200
        lines = answer.iter_lines()  # kept: a dropped iterator closes the response
        next(lines)
        yield http, answer


def post(service: Service, path: str, body: object, timeout: float = 120) -> httpx2.Response:
    return httpx2.post(f"{service.url}{path}", json=body, timeout=timeout, trust_env=False)


def test_a_streamed_answer_arrives_token_by_token_and_equals_the_whole_one(llm: Service) -> None:
    streamed = stream_chat(llm.url, chat(max_tokens=48, stream_options={"include_usage": True}))
    assert streamed.status == 200 and streamed.done
    content = streamed.content_arrivals()
    # One event per token as it is produced: they reach the client over the generation's
    # time, not together at the end.
    assert len(content) >= 20
    assert content[-1] - content[0] >= 0.1, content
    first, *_, finish, usage = streamed.events
    assert first["object"] == "chat.completion.chunk" and first["model"] == MODEL
    assert first["choices"][0]["delta"]["role"] == "assistant"
    assert finish["choices"][0]["finish_reason"] == "length" and finish["choices"][0]["delta"] == {}
    assert usage["choices"] == [] and usage["usage"]["completion_tokens"] == 48
    assert len({event["id"] for event in streamed.events}) == 1
    whole = post(llm, "/v1/chat/completions", chat(max_tokens=48))
    assert whole.status_code == 200, whole.text
    answer = whole.json()
    assert answer["object"] == "chat.completion"
    # Greedy decoding: the same text either way.
    assert answer["choices"][0]["message"]["content"] == streamed.text
    assert answer["usage"]["completion_tokens"] == 48
    assert answer["usage"]["prompt_tokens"] == usage["usage"]["prompt_tokens"] > 10


def test_a_stop_sequence_ends_the_answer_before_it(llm: Service) -> None:
    full = post(llm, "/v1/chat/completions", chat(max_tokens=40)).json()
    text = full["choices"][0]["message"]["content"]
    stop = text[len(text) // 2 : len(text) // 2 + 3]
    assert len(stop) == 3 and stop in text
    stopped = post(llm, "/v1/chat/completions", chat(max_tokens=40, stop=[stop])).json()
    assert stopped["choices"][0]["message"]["content"] == text[: text.index(stop)]
    assert stopped["choices"][0]["finish_reason"] == "stop"
    streamed = stream_chat(llm.url, chat(max_tokens=40, stop=stop))
    assert streamed.text == text[: text.index(stop)] and streamed.done


def test_completions_answer_in_their_own_shape(llm: Service) -> None:
    answer = post(llm, "/v1/completions", {"model": MODEL, "prompt": "The sky is", "max_tokens": 5})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["object"] == "text_completion" and body["usage"]["completion_tokens"] <= 5
    assert body["choices"][0]["finish_reason"] in ("length", "stop")
    models = httpx2.get(f"{llm.url}/v1/models", trust_env=False).json()
    assert [m["id"] for m in models["data"]] == [MODEL]


@pytest.mark.parametrize(
    ("raw", "status", "param", "code"),
    [
        (b"{not json", 400, None, None),
        (b"[" * 5000 + b"]" * 5000, 400, None, None),
        (orjson.dumps({"model": "gpt-4o", "messages": []}), 404, "model", "model_not_found"),
        (orjson.dumps(chat(max_tokens=10_000)), 400, "max_tokens", None),
        (orjson.dumps(chat("word " * 3000, max_tokens=500)), 400, "messages",
         "context_length_exceeded"),
        (orjson.dumps(chat(tools=[{"type": "function"}])), 400, "tools", None),
    ],
)  # fmt: skip
def test_bad_requests_get_openais_error_shape(
    llm: Service, raw: bytes, status: int, param: str | None, code: str | None
) -> None:
    answer = httpx2.post(
        f"{llm.url}/v1/chat/completions", content=raw, trust_env=False, timeout=30,
        headers={"Content-Type": "application/json"},
    )  # fmt: skip
    assert answer.status_code == status, answer.text
    error = answer.json()["error"]
    assert error["param"] == param and error["code"] == code and error["message"]


def test_too_large_a_body_is_refused_and_the_service_still_serves(llm: Service) -> None:
    answer = httpx2.post(
        f"{llm.url}/v1/chat/completions", content=b"x" * (512 * 1024), trust_env=False
    )
    assert answer.status_code == 413
    assert answer.json()["error"]["code"] == "body_too_large"
    assert post(llm, "/v1/chat/completions", chat(max_tokens=2)).status_code == 200


def test_beyond_its_streams_and_waiting_line_a_request_gets_503(llm: Service) -> None:
    """One stream generates, one waits (--max-streams 1, --max-waiting 1): a third request
    gets 503 with Retry-After at once; the two others complete."""
    rejected = llm.metric("llm_rejected_total", reason="queue_full")
    with generating(llm, 500) as (http, first):
        waiting = socket.create_connection(("127.0.0.1", int(llm.url.rsplit(":", 1)[1])))
        body = orjson.dumps(chat(max_tokens=2))
        head = b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n"
        waiting.sendall(head % len(body) + b"Content-Type: application/json\r\n\r\n" + body)
        wait_for("one waiting", lambda: llm.metric("llm_streams_waiting") == 1, 10)
        third = http.post(f"{llm.url}/v1/chat/completions", json=chat(max_tokens=2))
        assert third.status_code == 503 and third.headers["Retry-After"] == "1"
        assert third.json()["error"]["code"] == "queue_full"
        assert llm.metric("llm_rejected_total", reason="queue_full") == rejected + 1
        first.close()  # the client leaves mid-answer: the waiting request goes next
        waiting.settimeout(60)
        assert waiting.recv(4096).startswith(b"HTTP/1.1 200")
        waiting.close()


def test_a_client_that_leaves_frees_its_slot_at_once(llm: Service) -> None:
    """A stream of 400 tokens abandoned after its first event: the generation stops, the
    one slot is free again (a request right after is answered, not queued behind 400
    tokens), and the disconnect is counted."""
    left = llm.metric("llm_client_disconnects_total")
    generated = llm.metric("llm_completion_tokens_total")
    with generating(llm, 400):
        pass  # left after the first event
    # One slot (--max-streams 1): had the generation gone on, it would still hold it.
    wait_for("the slot free", lambda: llm.metric("llm_streams_active") == 0, 10)
    assert post(llm, "/v1/chat/completions", chat(max_tokens=2)).status_code == 200
    assert llm.metric("llm_client_disconnects_total") == left + 1
    assert llm.metric("llm_completion_tokens_total") - generated < 100


def test_the_series_the_platform_reads(llm: Service) -> None:
    post(llm, "/v1/chat/completions", chat(max_tokens=4))
    path = "/v1/chat/completions"
    assert llm.metric("http_requests_total", path=path, code="200") >= 1
    assert llm.metric("llm_time_to_first_token_seconds_count") >= 1
    assert llm.metric("llm_inter_token_seconds_count") >= 1
    assert llm.metric("llm_ready") == 1
    assert llm.metric("llm_device_info", device="cpu", engine="llama-cpp") == 1
    assert llm.metric("llm_startup_seconds") > 0
    assert llm.metric("inference_requests_in_flight") == 0
    phases = {p: llm.metric("llm_startup_phase_seconds", phase=p) for p in ("imports", "on_device")}
    assert all(seconds > 0 for seconds in phases.values()), phases


def test_a_service_without_its_model_exits_3(tmp_path: Path) -> None:
    """A --model-dir without the GGUF file: a clear line, exit code 3 (missing)."""
    command = [sys.executable, "-m", LLM, f"--port={free_port()}", f"--model-dir={tmp_path}"]
    ended = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
    assert ended.returncode == 3, ended.stderr
    assert "cannot start" in ended.stderr and "gguf" in ended.stderr.lower()


def both_streamed(url: str, prompts: tuple[str, str]) -> list[tuple[str, float, float]]:
    """Two greedy streamed chats sent together: (text, first token, last token) each."""
    with ThreadPoolExecutor(2) as pool:
        answers = list(pool.map(lambda p: stream_chat(url, chat(p, max_tokens=40)), prompts))
    results = []
    for answer in answers:
        assert answer.status == 200 and answer.done
        arrivals = answer.content_arrivals()
        results.append((answer.text, arrivals[0], arrivals[-1]))
    return results


@pytest.mark.parametrize("kv_cache", ["unified", "per-sequence"])
def test_batched_streams_decode_together_and_answer_as_alone(tmp_path: Path, kv_cache: str) -> None:
    """--batch-streams 2 (the GPU's continuous batching, on this CPU): two streams advance
    in the same steps, each in its own sequence of the cache (one buffer, or one each),
    and greedy answers are the ones each gets alone. With one stream at a time the second
    would start only after the first ended, which the interleaving check tells apart."""
    prompts = (COUNTING, "Name three colours.")
    log = tmp_path / "llm.log"
    flags = ("--max-streams=2", "--batch-streams=2", f"--kv-cache={kv_cache}")
    with running_service(log, *flags, module=LLM) as service:
        alone = [stream_chat(service.url, chat(p, max_tokens=40)).text for p in prompts]
        together = both_streamed(service.url, prompts)
    assert [text for text, _, _ in together] == alone
    (_, first_a, last_a), (_, first_b, last_b) = together
    assert max(first_a, first_b) < min(last_a, last_b), together


COUNTING_ON = {"model": MODEL, "prompt": "1, 2, 3, 4, 5, 6, 7, 8,", "temperature": 0}


def test_a_batched_stream_that_leaves_frees_its_sequence_at_once(tmp_path: Path) -> None:
    """Two sequences in the cache (--batch-streams 2), a long one abandoned after its
    first event: a third request takes its sequence and is answered while the other,
    shorter stream still generates. Had the abandoned one gone on, the third would wait
    for its 1,500 tokens (a completion that counts on: it never ends by itself), long
    after the other's 200."""
    flags = ("--max-streams=3", "--batch-streams=2", "--max-tokens=1600")
    with (
        running_service(tmp_path / "llm.log", *flags, module=LLM) as service,
        ThreadPoolExecutor(1) as pool,
        httpx2.Client(trust_env=False, timeout=120) as http,
    ):
        long = {**COUNTING_ON, "max_tokens": 1500, "stream": True}
        with http.stream("POST", f"{service.url}/v1/completions", json=long) as abandoned:
            lines = abandoned.iter_lines()  # kept: a dropped iterator closes the response
            next(lines)
            short = {**COUNTING_ON, "max_tokens": 200}
            other = pool.submit(post, service, "/v1/completions", short)
            wait_for("both generating", lambda: service.metric("llm_streams_active") == 2, 10)
        third = post(service, "/v1/chat/completions", chat(max_tokens=2))
        assert third.status_code == 200, third.text
        assert not other.done()
        assert other.result().json()["usage"]["completion_tokens"] == 200
