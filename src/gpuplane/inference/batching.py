"""Dynamic batching: concurrent requests' texts are coalesced into one model call of at
most ``max_batch`` texts, waiting at most ``max_wait`` seconds after the first one arrived.
With ``max_wait`` 0 (the service's default) a batch starts as soon as the model is free
and the texts that arrive while it runs form the next one: batches grow with the load and
a lone request waits for nothing.
The queue is bounded in texts; a request that would overflow it is refused whole
(:class:`QueueFull`, the server's 503), never half-queued.

The model runs in one worker thread, one batch at a time (a GPU gains nothing from
interleaving), so the event loop keeps accepting and answering while it computes. Each
batch is first prepared (tokenised and padded) in a thread of its own: when a full batch
is already waiting while the model computes, it is taken and prepared meanwhile, so at
saturation the tokeniser and the GPU work at the same time (on the GPU machine the two
took 10 and 15 ms of a 512-text batch, one after the other). Short of a full batch, the
next batch is taken only once the model is free, so batches keep growing with the load."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from typing import Any


class QueueFull(Exception):
    """The bounded queue has no room for the request's texts."""


def batch_due(
    queued: int, first_queued_at: float, now: float, max_batch: int, max_wait: float
) -> float:
    """Seconds to wait before the next batch is due: 0 when it is due now (a full batch,
    or the oldest text has waited ``max_wait``). Pure, for tests with fake time."""
    if queued >= max_batch:
        return 0.0
    return max(0.0, first_queued_at + max_wait - now)


@dataclass
class _Item:
    text: str
    result: asyncio.Future[Any]
    queued_at: float


@dataclass
class BatchOutcome:
    size: int
    tokens: int
    seconds: float


def _unchanged(texts: list[str]) -> Any:
    return texts


@dataclass
class Batcher:
    """``embed(prepare(texts)) -> (vectors, tokens of each text)``: ``prepare`` runs in
    the preparing thread, ``embed`` in the model's."""

    embed: Callable[[Any], tuple[list[Any], list[int]]]
    max_batch: int
    max_wait: float
    max_queue: int
    on_batch: Callable[[BatchOutcome], None] = lambda outcome: None
    prepare: Callable[[list[str]], Any] = _unchanged
    clock: Callable[[], float] = time.monotonic
    _queue: deque[_Item] = field(default_factory=deque)
    _arrived: asyncio.Event = field(default_factory=asyncio.Event)
    _worker: ThreadPoolExecutor = field(
        default_factory=lambda: ThreadPoolExecutor(1, thread_name_prefix="model")
    )
    _preparer: ThreadPoolExecutor = field(
        default_factory=lambda: ThreadPoolExecutor(1, thread_name_prefix="prepare")
    )

    @property
    def queued(self) -> int:
        return len(self._queue)

    async def submit(self, texts: tuple[str, ...]) -> tuple[list[Any], int]:
        """The texts' vectors (in order) and their token count."""
        if len(self._queue) + len(texts) > self.max_queue:
            raise QueueFull(f"{len(self._queue)} texts queued, room for {self.max_queue}")
        loop = asyncio.get_running_loop()
        now = self.clock()
        items = [_Item(text, loop.create_future(), now) for text in texts]
        self._queue.extend(items)
        self._arrived.set()
        try:
            results = await asyncio.gather(*(item.result for item in items))
        except asyncio.CancelledError:
            # The client went away: its texts not yet in a batch are skipped.
            for item in items:
                item.result.cancel()
            raise
        return [vector for vector, _ in results], sum(tokens for _, tokens in results)

    def _take(self) -> list[_Item]:
        batch: list[_Item] = []
        while self._queue and len(batch) < self.max_batch:
            item = self._queue.popleft()
            if not item.result.done():
                batch.append(item)
        return batch

    async def run(self) -> None:
        """Form and run batches until cancelled."""
        loop = asyncio.get_running_loop()
        computing: asyncio.Task[None] | None = None  # the batch in the model now
        while True:
            await self._due()
            if computing is not None and not computing.done() and len(self._queue) < self.max_batch:
                await self._freed_or_filled(computing)
                continue
            batch = self._take()
            if not batch:
                continue
            started = self.clock()
            texts = [item.text for item in batch]
            if computing is None or computing.done():
                # The model is free: one hop to its thread, as a lone request wants.
                work = partial(self._prepare_and_embed, texts)
                computing = loop.create_task(self._compute(batch, work, started))
                continue
            try:  # a full batch behind a busy model: tokenised meanwhile
                prepared = await loop.run_in_executor(self._preparer, self.prepare, texts)
            except Exception as error:  # noqa: BLE001 - every waiting request gets the error
                _fail(batch, error)
                continue
            await asyncio.wait({computing})  # one batch in the model, the next ready
            work = partial(self.embed, prepared)
            computing = loop.create_task(self._compute(batch, work, started))

    async def _due(self) -> None:
        """Until a batch is due: texts queued, and full or waited ``max_wait``."""
        while True:
            while not self._queue:
                self._arrived.clear()
                await self._arrived.wait()
            wait = batch_due(
                len(self._queue),
                self._queue[0].queued_at,
                self.clock(),
                self.max_batch,
                self.max_wait,
            )
            if wait <= 0:
                return
            self._arrived.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._arrived.wait(), wait)

    async def _freed_or_filled(self, computing: asyncio.Task[None]) -> None:
        """Until the model is free or more texts arrive."""
        self._arrived.clear()
        arrival = asyncio.ensure_future(self._arrived.wait())
        try:
            await asyncio.wait({computing, arrival}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            arrival.cancel()

    def _prepare_and_embed(self, texts: list[str]) -> tuple[list[Any], list[int]]:
        return self.embed(self.prepare(texts))

    async def _compute(
        self, batch: list[_Item], work: Callable[[], tuple[list[Any], list[int]]], started: float
    ) -> None:
        loop = asyncio.get_running_loop()
        try:
            vectors, token_counts = await loop.run_in_executor(self._worker, work)
        except Exception as error:  # noqa: BLE001 - every waiting request gets the error
            _fail(batch, error)
            return
        for item, vector, tokens in zip(batch, vectors, token_counts, strict=True):
            if not item.result.done():
                item.result.set_result((vector, tokens))
        self.on_batch(BatchOutcome(len(batch), sum(token_counts), self.clock() - started))

    def close(self) -> None:
        self._worker.shutdown(wait=False, cancel_futures=True)
        self._preparer.shutdown(wait=False, cancel_futures=True)


def _fail(batch: list[_Item], error: Exception) -> None:
    for item in batch:
        if not item.result.done():
            item.result.set_exception(error)
