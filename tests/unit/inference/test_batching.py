"""Dynamic batching with a real event loop and an injected model (``embed``): what is
under test is the coalescing, the bound and the cancellation, not the model."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest

from gpuplane.inference.batching import Batcher, BatchOutcome, QueueFull, batch_due


def test_a_full_batch_is_due_at_once() -> None:
    assert batch_due(8, first_queued_at=100.0, now=100.0, max_batch=8, max_wait=0.05) == 0.0


def test_a_partial_batch_waits_what_is_left_of_max_wait() -> None:
    assert batch_due(3, first_queued_at=100.0, now=100.02, max_batch=8, max_wait=0.05) == (
        pytest.approx(0.03)
    )
    assert batch_due(3, first_queued_at=100.0, now=100.5, max_batch=8, max_wait=0.05) == 0.0


class Model:
    """Echoes each text's length; blocks until released so tests control the timing."""

    def __init__(self) -> None:
        self.batches: list[list[str]] = []
        self.release = threading.Event()
        self.release.set()

    def __call__(self, texts: list[str]) -> tuple[list[Any], list[int]]:
        self.release.wait(5)
        self.batches.append(list(texts))
        return [len(t) for t in texts], [1] * len(texts)


async def _with_batcher(model: Model, test: Any, **limits: Any) -> Any:
    outcomes: list[BatchOutcome] = []
    settings = {"max_batch": 8, "max_wait": 0.05, "max_queue": 64, **limits}
    batcher = Batcher(model, on_batch=outcomes.append, **settings)
    runner = asyncio.create_task(batcher.run())
    try:
        return await test(batcher), outcomes
    finally:
        runner.cancel()
        batcher.close()


def test_concurrent_requests_are_coalesced_and_answered_in_order() -> None:
    model = Model()

    async def test(batcher: Batcher) -> Any:
        return await asyncio.gather(*(batcher.submit((f"{'x' * i}",)) for i in range(1, 6)))

    answers, outcomes = asyncio.run(_with_batcher(model, test))
    assert [vectors for vectors, _ in answers] == [[1], [2], [3], [4], [5]]
    assert len(model.batches) == 1
    assert outcomes[0].size == 5


def test_a_batch_never_exceeds_max_batch() -> None:
    model = Model()

    async def test(batcher: Batcher) -> Any:
        return await batcher.submit(tuple("abcdefghijklmnopqrst"))

    (vectors, tokens), _ = asyncio.run(_with_batcher(model, test, max_batch=8))
    assert [len(b) for b in model.batches] == [8, 8, 4]
    assert (len(vectors), tokens) == (20, 20)


def test_a_request_that_overflows_the_queue_is_refused_whole() -> None:
    model = Model()
    model.release.clear()

    async def test(batcher: Batcher) -> Any:
        first = asyncio.create_task(batcher.submit(tuple("abcd")))
        await asyncio.sleep(0.1)  # in the model, blocked
        second = asyncio.create_task(batcher.submit(tuple("ijkl")))
        await asyncio.sleep(0)
        with pytest.raises(QueueFull):
            await batcher.submit(tuple("mnop"))
        queued = batcher.queued
        model.release.set()
        await asyncio.gather(first, second)
        return queued

    queued, _ = asyncio.run(_with_batcher(model, test, max_batch=4, max_queue=6))
    assert queued == 4  # the refused request left nothing behind


def test_a_cancelled_request_is_skipped_by_the_next_batch() -> None:
    model = Model()
    model.release.clear()

    async def test(batcher: Batcher) -> Any:
        busy = asyncio.create_task(batcher.submit(("busy",)))
        await asyncio.sleep(0.1)
        gone = asyncio.create_task(batcher.submit(("gone", "gone")))
        kept = asyncio.create_task(batcher.submit(("kept",)))
        await asyncio.sleep(0)
        gone.cancel()
        model.release.set()
        await busy
        return await kept

    (vectors, _), _ = asyncio.run(_with_batcher(model, test))
    assert vectors == [4]
    assert ["gone"] not in model.batches and all("gone" not in b for b in model.batches)


def test_a_model_error_reaches_every_request_of_the_batch() -> None:
    def broken(texts: list[str]) -> tuple[list[Any], list[int]]:
        raise RuntimeError("CUDA out of memory")

    async def test(batcher: Batcher) -> Any:
        results = await asyncio.gather(
            batcher.submit(("a",)), batcher.submit(("b",)), return_exceptions=True
        )
        return [str(r) for r in results]

    messages, _ = asyncio.run(_with_batcher(broken, test))  # type: ignore[arg-type]
    assert messages == ["CUDA out of memory", "CUDA out of memory"]


def test_without_a_wait_a_lone_request_starts_at_once_and_the_rest_form_the_next_batch() -> None:
    """max_wait 0 (the service's default): the first text runs alone without waiting;
    what arrives while the model is busy is taken whole as the next batch."""
    model = Model()
    model.release.clear()

    async def test(batcher: Batcher) -> Any:
        first = asyncio.create_task(batcher.submit(("a",)))
        await asyncio.sleep(0.01)  # far less than any wait: it was taken at once
        assert batcher.queued == 0
        rest = [asyncio.create_task(batcher.submit((t,))) for t in ("bb", "ccc", "dddd")]
        await asyncio.sleep(0.05)
        assert batcher.queued == 3  # waiting for the model, not for a timer
        model.release.set()
        return await asyncio.gather(first, *rest)

    answers, outcomes = asyncio.run(_with_batcher(model, test, max_wait=0.0))
    assert [vectors for vectors, _ in answers] == [[1], [2], [3], [4]]
    assert model.batches == [["a"], ["bb", "ccc", "dddd"]]
    assert [o.size for o in outcomes] == [1, 3]


def test_a_full_batch_is_prepared_while_the_model_computes_the_one_before() -> None:
    """At saturation the tokeniser and the model overlap: a full batch waiting behind a
    busy model is taken and prepared before the model is free; it then runs next."""
    model = Model()
    model.release.clear()
    prepared: list[list[str]] = []

    def prepare(texts: list[str]) -> list[str]:
        prepared.append(list(texts))
        return texts

    async def test(batcher: Batcher) -> Any:
        first = asyncio.create_task(batcher.submit(("a",)))
        while not prepared:
            await asyncio.sleep(0.01)
        full = asyncio.create_task(batcher.submit(tuple("bcdefghi")))
        for _ in range(200):  # until prepared, or 2 s: the model is held all along
            if len(prepared) == 2:
                break
            await asyncio.sleep(0.01)
        seen_while_busy = (list(prepared), list(model.batches))
        model.release.set()
        await asyncio.gather(first, full)
        return seen_while_busy

    (prepared_then, computed_then), outcomes = asyncio.run(
        _with_batcher(model, test, max_wait=0.0, prepare=prepare)
    )
    assert prepared_then == [["a"], list("bcdefghi")]
    assert computed_then == []  # the model had not finished the first batch
    assert model.batches == [["a"], list("bcdefghi")]
    assert [o.size for o in outcomes] == [1, 8]
