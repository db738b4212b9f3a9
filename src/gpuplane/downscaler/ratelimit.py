"""Client-side limits on the operator's writes: a token bucket (``qps`` with ``burst``)
and a bound on requests in flight, like client-go's QPS/Burst, so a cycle of 5,000 actions
cannot flood the API server and one of 1,000 still finishes in seconds."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")


class TokenBucket:
    """``burst`` requests at once, then ``qps`` a second. Time is injected (fake in tests)."""

    def __init__(
        self,
        qps: float,
        burst: int,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        if qps <= 0 or burst < 1:
            raise ValueError(f"qps must be > 0 and burst >= 1 (got qps={qps}, burst={burst})")
        self.qps, self.burst = qps, burst
        self._clock, self._sleep = clock, sleep
        self._tokens = float(burst)
        self._updated = clock()
        self._lock = asyncio.Lock()

    def _refill(self) -> None:
        now = self._clock()
        self._tokens = min(self.burst, self._tokens + (now - self._updated) * self.qps)
        self._updated = now

    async def take(self) -> None:
        # One waiter at a time: tokens go out in arrival order.
        async with self._lock:
            self._refill()
            if self._tokens < 1:
                await self._sleep((1 - self._tokens) / self.qps)
                self._refill()
            self._tokens -= 1


class RequestLimits:
    """Every write of the operator passes here: a token, then a slot in flight."""

    def __init__(self, qps: float, burst: int, max_in_flight: int) -> None:
        if max_in_flight < 1:
            raise ValueError(f"max_in_flight must be >= 1 (got {max_in_flight})")
        self.bucket = TokenBucket(qps, burst)
        self.in_flight = asyncio.Semaphore(max_in_flight)

    async def run(self, request: Callable[[], Awaitable[T]]) -> T:
        await self.bucket.take()
        async with self.in_flight:
            return await request()
