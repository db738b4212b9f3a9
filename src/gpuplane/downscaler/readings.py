"""From Prometheus answers to per-target readings and a verdict (pure).

A signal is Active for a target when its value is at or above ``idleBelow``, Idle when
below, Unknown when there is no series for the target, the query failed, Prometheus is
unreachable or the sample is stale. Unknown never counts as idle: an empty answer is not
zero load (the keda#3065 outage).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

from gpuplane.downscaler.policy import Signal, Wake


class Verdict(StrEnum):
    ACTIVE = "Active"
    IDLE = "Idle"
    UNKNOWN = "Unknown"


@dataclass(frozen=True)
class QueryResult:
    """One query's answer: a value and sample time per target, or why there is none."""

    values: dict[str, tuple[float, datetime]] = field(default_factory=dict)
    error: str | None = None
    unreachable: bool = False


def vector_values(payload: dict[str, Any], target_label: str) -> dict[str, tuple[float, datetime]]:
    """The ``data.result`` vector of /api/v1/query keyed by ``target_label``.

    Series without the label are ignored; NaN values are left out (no data).
    """
    values: dict[str, tuple[float, datetime]] = {}
    for series in payload.get("data", {}).get("result", []):
        target = series.get("metric", {}).get(target_label)
        stamp, raw = series.get("value", (None, None))
        if target is None or raw is None:
            continue
        value = float(raw)
        if math.isnan(value):
            continue
        values[target] = (value, datetime.fromtimestamp(float(stamp), tz=UTC))
    return values


@dataclass(frozen=True)
class SignalReading:
    signal: str
    value: float | None
    threshold: float
    unknown_reason: str = ""

    @property
    def active(self) -> bool:
        return self.value is not None and self.value >= self.threshold

    @property
    def relation(self) -> str:
        return ">=" if self.active else "<"

    def describe(self) -> str:
        """With the live value: for what happened (an action's reason, events, the log)."""
        if self.value is None:
            return f"{self.signal}=unknown ({self.unknown_reason})"
        return f"{self.signal}={self.value:g} {self.relation} {self.threshold:g}"

    def state(self) -> str:
        """Without the live value, so the policy status changes only when a verdict does
        (a rate never reads the same twice; readings go to metrics)."""
        if self.value is None:
            return f"{self.signal}=unknown ({self.unknown_reason.split(' (', 1)[0]})"
        return f"{self.signal} {self.relation} {self.threshold:g}"


@dataclass(frozen=True)
class WakeReading:
    """The wake query's value for one target: woken when strictly above ``above``."""

    value: float | None
    above: float

    @property
    def woken(self) -> bool:
        return self.value is not None and self.value > self.above

    def describe(self) -> str:
        shown = "unknown" if self.value is None else f"{self.value:g}"
        return f"wake={shown} {'>' if self.woken else '<='} {self.above:g}"


def read_signal(
    signal: Signal, result: QueryResult, target: str, now: datetime, stale_after: timedelta
) -> SignalReading:
    if result.unreachable:
        return SignalReading(signal.name, None, signal.idle_below, "Prometheus unreachable")
    if result.error is not None:
        return SignalReading(signal.name, None, signal.idle_below, f"query error: {result.error}")
    sample = result.values.get(target)
    if sample is None:
        return SignalReading(signal.name, None, signal.idle_below, "no series")
    value, stamp = sample
    if now - stamp > stale_after:
        age = int((now - stamp).total_seconds())
        return SignalReading(signal.name, None, signal.idle_below, f"stale sample ({age}s old)")
    return SignalReading(signal.name, value, signal.idle_below)


def read_wake(
    wake: Wake, result: QueryResult, target: str, now: datetime, stale_after: timedelta
) -> WakeReading:
    """No series, an error or a stale sample is not a wake."""
    sample = None if result.error is not None or result.unreachable else result.values.get(target)
    if sample is None or now - sample[1] > stale_after:
        return WakeReading(None, wake.above)
    return WakeReading(sample[0], wake.above)


def verdict_of(readings: list[SignalReading]) -> Verdict:
    """Any active -> Active; else any unknown -> Unknown; else (all idle) -> Idle."""
    if any(reading.active for reading in readings):
        return Verdict.ACTIVE
    if not readings or any(reading.value is None for reading in readings):
        return Verdict.UNKNOWN
    return Verdict.IDLE
