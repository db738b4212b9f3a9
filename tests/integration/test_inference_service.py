"""The embeddings service as a real process on this CPU: real model, real HTTP, real
batching. (On a kubelet node and on the GPU: tests/e2e.)"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx2
import numpy
import pytest

from tests.integration.inference_kit import MODEL, Service, running_service, wait_http

SENTENCES = [
    "A man is eating food.",
    "A man is eating a piece of bread.",
    "The new movie is awesome.",
    "A cheetah is running behind its prey.",
]


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Any:
    log = tmp_path_factory.mktemp("inference") / "service.log"
    with running_service(
        log, "--namespace", "ml", "--deployment", "embeddings", "--max-wait-ms", "40"
    ) as running:
        yield running


def post(service: Service, body: Any, **kwargs: Any) -> httpx2.Response:
    return httpx2.post(
        f"{service.url}/v1/embeddings", json=body, timeout=30, trust_env=False, **kwargs
    )


def test_known_sentences_embed_with_the_right_dimension_and_order(service: Service) -> None:
    answer = post(service, {"model": MODEL, "input": SENTENCES})
    assert answer.status_code == 200
    body = answer.json()
    vectors = numpy.array([item["embedding"] for item in body["data"]])
    assert vectors.shape == (4, 384)
    assert [item["index"] for item in body["data"]] == [0, 1, 2, 3]
    similarity = vectors @ vectors.T
    # The two eating sentences are each other's nearest neighbour; the film is far from both.
    assert similarity[0, 1] == pytest.approx(0.7553, abs=0.001)
    assert similarity[0, 1] > max(similarity[0, 2], similarity[0, 3])
    assert similarity[1, 0] > max(similarity[1, 2], similarity[1, 3])
    assert body["usage"]["prompt_tokens"] > len(SENTENCES)


def test_concurrent_requests_are_batched(service: Service) -> None:
    before_count = service.metric("inference_batch_size_count")
    before_sum = service.metric("inference_batch_size_sum")

    async def burst() -> list[int]:
        async with httpx2.AsyncClient(trust_env=False, timeout=30) as client:
            answers = await asyncio.gather(
                *(
                    client.post(
                        f"{service.url}/v1/embeddings",
                        json={"model": MODEL, "input": f"request {i}"},
                    )
                    for i in range(24)
                )
            )
        return [a.status_code for a in answers]

    assert asyncio.run(burst()) == [200] * 24
    batches = service.metric("inference_batch_size_count") - before_count
    texts = service.metric("inference_batch_size_sum") - before_sum
    assert texts == 24
    assert batches < 24, "24 concurrent single-text requests ran as 24 batches: nothing coalesced"
    # The histogram shows it too: some batch landed above the first bucket.
    assert service.metric("inference_batch_size_bucket", le="1.0") < service.metric(
        "inference_batch_size_count"
    )


@pytest.mark.parametrize(
    ("content", "status", "param"),
    [
        (b"{not json", 400, None),
        (b'{"model": "all-MiniLM-L6-v2", "input": ""}', 400, "input"),
        (b'{"model": "all-MiniLM-L6-v2", "input": [[101, 102]]}', 400, "input"),
        (b'{"model": "gpt-4o", "input": "x"}', 404, "model"),
    ],
)
def test_bad_requests_get_openai_shaped_errors(
    service: Service, content: bytes, status: int, param: str | None
) -> None:
    answer = httpx2.post(
        f"{service.url}/v1/embeddings", content=content, timeout=10, trust_env=False
    )
    assert answer.status_code == status
    error = answer.json()["error"]
    assert error["param"] == param
    assert error["message"]


def test_only_api_requests_are_counted(service: Service) -> None:
    before = service.metric("http_requests_total", namespace="ml", deployment="embeddings")
    for _ in range(3):
        httpx2.get(f"{service.url}/healthz", trust_env=False)
        httpx2.get(f"{service.url}/readyz", trust_env=False)
    assert service.metric("http_requests_total", namespace="ml", deployment="embeddings") == before
    assert post(service, {"model": MODEL, "input": "counted"}).status_code == 200
    assert (
        service.metric(
            "http_requests_total",
            namespace="ml",
            deployment="embeddings",
            path="/v1/embeddings",
            code="200",
        )
        >= 1
    )


def test_overload_gets_503_with_retry_after(tmp_path: Path) -> None:
    with running_service(
        tmp_path / "small.log", "--max-batch-size", "8", "--max-queue", "8", "--max-wait-ms", "50"
    ) as small:

        async def flood() -> list[httpx2.Response]:
            async with httpx2.AsyncClient(trust_env=False, timeout=60) as client:
                return list(
                    await asyncio.gather(
                        *(
                            client.post(
                                f"{small.url}/v1/embeddings",
                                json={"model": MODEL, "input": [f"text {i} {j}" for j in range(8)]},
                            )
                            for i in range(40)
                        )
                    )
                )

        answers = asyncio.run(flood())
    codes = [a.status_code for a in answers]
    assert set(codes) == {200, 503}, codes
    refused = [a for a in answers if a.status_code == 503]
    assert all(a.headers["Retry-After"] == "1" for a in refused)
    assert {a.json()["error"]["code"] for a in refused} == {"queue_full"}
    assert all(len(a.json()["data"]) == 8 for a in answers if a.status_code == 200)


def test_readyz_is_false_until_the_warm_up_ran(tmp_path: Path) -> None:
    # A large warm-up batch (200 texts, seconds on a CPU) keeps the loading window open.
    with running_service(
        tmp_path / "slow.log", "--max-batch-size", "200", "--max-queue", "200", ready=False
    ) as slow:
        assert httpx2.get(f"{slow.url}/readyz", trust_env=False).status_code == 503
        early = post(slow, {"model": MODEL, "input": "too early"})
        assert early.status_code == 503
        assert early.json()["error"]["code"] == "not_ready"
        assert slow.metric("inference_ready") == 0
        wait_http(slow, "/readyz", timeout=120)
        assert slow.metric("inference_ready") == 1
        phases = {
            phase: slow.metric("inference_startup_phase_seconds", phase=phase)
            for phase in ("imports", "weights_loaded", "on_device", "warmed_up", "ready")
        }
        assert phases["warmed_up"] > 0.2, phases  # 200 texts on a CPU take time
        assert slow.metric("inference_startup_seconds") == pytest.approx(
            sum(phases.values()), abs=0.01
        )
        assert slow.metric("inference_device_info", device="cpu") == 1


def test_a_request_in_flight_at_sigterm_is_answered(tmp_path: Path) -> None:
    """A scale to zero sends SIGTERM while a request waits in the batcher (held there by a
    long max wait): the service stops listening, answers it, then exits 0."""
    with running_service(tmp_path / "drain.log", "--max-wait-ms", "2000") as draining:

        async def request_then_sigterm() -> httpx2.Response:
            async with httpx2.AsyncClient(trust_env=False, timeout=30) as client:
                sent = asyncio.create_task(
                    client.post(
                        f"{draining.url}/v1/embeddings", json={"model": MODEL, "input": ["last"]}
                    )
                )
                await asyncio.sleep(0.5)  # in the batcher, waiting for company
                draining.process.terminate()
                return await sent

        answer = asyncio.run(request_then_sigterm())
        assert draining.process.wait(timeout=30) == 0, draining.log.read_text()[-2000:]
    assert answer.status_code == 200, answer.text
    assert len(answer.json()["data"][0]["embedding"]) == 384
