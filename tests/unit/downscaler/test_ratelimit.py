"""The client-side write limits with fake time: a burst at once, then qps a second."""

from __future__ import annotations

import asyncio

import pytest

from gpuplane.downscaler.ratelimit import RequestLimits, TokenBucket


class FakeAsyncTime:
    def __init__(self) -> None:
        self.now = 0.0

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.now += seconds


def test_burst_then_qps() -> None:
    time = FakeAsyncTime()
    bucket = TokenBucket(qps=10, burst=5, clock=time.clock, sleep=time.sleep)

    async def take(count: int) -> list[float]:
        stamps = []
        for _ in range(count):
            await bucket.take()
            stamps.append(time.now)
        return stamps

    stamps = asyncio.run(take(15))
    assert stamps[:5] == [0.0] * 5  # the burst
    assert stamps[-1] == pytest.approx(1.0)  # ten more at 10 a second
    time.now += 10  # idle: the bucket refills up to burst, not beyond
    again = asyncio.run(take(6))
    assert again[:5] == [pytest.approx(11.0)] * 5
    assert again[5] == pytest.approx(11.1)


def test_in_flight_is_bounded() -> None:
    limits = RequestLimits(qps=1000, burst=1000, max_in_flight=3)
    running = 0
    peak = 0

    async def request() -> int:
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        running -= 1
        return 1

    async def many() -> int:
        return sum(await asyncio.gather(*(limits.run(request) for _ in range(20))))

    assert asyncio.run(many()) == 20
    assert peak == 3


def test_bad_limits_are_refused() -> None:
    with pytest.raises(ValueError, match="qps must be > 0"):
        TokenBucket(qps=0, burst=1)
    with pytest.raises(ValueError, match="max_in_flight must be >= 1"):
        RequestLimits(qps=1, burst=1, max_in_flight=0)
