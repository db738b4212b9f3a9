"""What both sides of the proxy share: a bounded buffer of body bytes that pauses its
transport's reading while full, and the connection protocol both sides build on, whose
``drain()`` waits while its transport's write buffer is full. Together a slow reader on
one side slows the writer on the other instead of growing memory."""

from __future__ import annotations

import asyncio
from collections import deque
from typing import cast

# Body bytes buffered from one transport before its reading pauses; it resumes at a quarter.
BUFFER_HIGH = 256 * 1024


class ReadGate:
    """One transport's reading, paused for any of several reasons (a full body buffer, the
    process's body budget, a full pipeline) and resumed only when none is left."""

    def __init__(self, transport: asyncio.Transport) -> None:
        self._transport = transport
        self._reasons: set[str] = set()

    @property
    def paused(self) -> bool:
        return bool(self._reasons)

    def pause(self, reason: str) -> None:
        if not self._reasons:
            self._transport.pause_reading()
        self._reasons.add(reason)

    def resume(self, reason: str) -> None:
        if reason in self._reasons:
            self._reasons.discard(reason)
            if not self._reasons:
                self._transport.resume_reading()


class InputBudget:
    """Request bytes buffered by the whole process, every connection together: heads from
    their first byte until answered, bodies until forwarded (held requests and those
    pipelined behind them included). Past ``limit`` every
    client connection stops reading until the total is back under half: bytes arrive only
    as fast as bodies are forwarded, never into memory without end (70 connections x 16
    pipelined x 250 KiB once reached 308 MiB). Pausing all of them at once bounds the
    overshoot by one read (asyncio reads 256 KiB at most)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.used = 0
        self.over = False
        self._gates: set[ReadGate] = set()

    def join(self, gate: ReadGate) -> None:
        self._gates.add(gate)
        if self.over:
            gate.pause("budget")

    def leave(self, gate: ReadGate) -> None:
        self._gates.discard(gate)

    def take(self, size: int) -> None:
        self.used += size
        if self.used > self.limit and not self.over:
            self.over = True
            for gate in self._gates:
                gate.pause("budget")

    def give_back(self, size: int) -> None:
        self.used -= size
        if self.over and self.used <= self.limit // 2:
            self.over = False
            for gate in self._gates:
                gate.resume("budget")


class PeerGone(ConnectionError):
    """The other end closed the connection before the message was complete."""


class Chunks:
    """Body bytes as they arrive from one transport, for one reader."""

    def __init__(self, reading: ReadGate, budget: InputBudget | None = None) -> None:
        self._reading = reading
        self._budget = budget
        self._parts: deque[bytes] = deque()
        self._size = 0
        self._paused = False
        self._waiter: asyncio.Future[None] | None = None
        self.complete = False  # every byte of the body has arrived
        self.error: BaseException | None = None

    def feed(self, data: bytes) -> None:
        self._parts.append(data)
        self._size += len(data)
        if self._size > BUFFER_HIGH and not self._paused:
            self._paused = True
            self._reading.pause("body")
        if self._budget is not None:
            self._budget.take(len(data))
        self._wake()

    def _taken(self, size: int) -> None:
        self._size -= size
        if self._budget is not None:
            self._budget.give_back(size)

    def finish(self, error: BaseException | None = None) -> None:
        if not self.complete:
            self.complete, self.error = error is None, error
        self._wake()

    def discard(self) -> None:
        """Drop what is buffered and read on: the reader wants no more of it (also what a
        dead connection's requests held: the budget gets it back)."""
        self._parts.clear()
        self._taken(self._size)
        if self._paused:
            self._paused = False
            self._reading.resume("body")

    async def next(self) -> bytes:
        """The next bytes, ``b""`` at the end; the error when the sender went away first."""
        while not self._parts:
            if self.error is not None:
                raise self.error
            if self.complete:
                return b""
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        data = self._parts.popleft()
        self._taken(len(data))
        if self._paused and self._size <= BUFFER_HIGH // 4:
            self._paused = False
            self._reading.resume("body")
        return data

    def take_all(self) -> bytes:
        """Everything buffered now, at once (a body that arrived whole)."""
        data = b"".join(self._parts)
        self._parts.clear()
        self._taken(self._size)
        return data

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)


class Connection(asyncio.Protocol):
    """One TCP connection of the proxy, either side: writes that stop once it is closed,
    and the transport's pause/resume of writing, awaitable."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self._can_write = asyncio.Event()
        self._can_write.set()
        self.closed = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._can_write.set()  # a writer waiting to drain learns the peer is gone

    def pause_writing(self) -> None:
        self._can_write.clear()

    def resume_writing(self) -> None:
        self._can_write.set()

    def write(self, data: bytes) -> None:
        if self.transport is not None and not self.closed:
            self.transport.write(data)

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()

    async def drain(self) -> None:
        if not self._can_write.is_set():
            await self._can_write.wait()
        if self.closed:
            raise PeerGone("the connection closed")
