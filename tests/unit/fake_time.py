"""Fake time for unit tests: a clock that moves only when the code under test sleeps."""

from __future__ import annotations


class FakeTime:
    def __init__(self) -> None:
        self.now = 0.0

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds
