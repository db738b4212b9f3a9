"""The pieces of the kopf handlers that decide something: the wake clock stopped by the
Deployment cache's callback, and an invalid policy's status written only when it changes."""

from __future__ import annotations

from datetime import UTC, datetime

from gpuplane.downscaler.handlers import _conditions_differ, wake_watch
from gpuplane.downscaler.metrics import OperatorMetrics
from gpuplane.downscaler.snapshot import DeploymentSnapshot
from gpuplane.downscaler.status import invalid_policy_status
from gpuplane.downscaler.wake import WakeTracker

CREATED = datetime(2026, 11, 28, tzinfo=UTC)


def snapshot(ready: int) -> DeploymentSnapshot:
    return DeploymentSnapshot("ml", "llm", "uid", {}, 2, CREATED, None, 1, ready_replicas=ready)


def test_the_cache_callback_stops_a_wake_clock_once() -> None:
    wakes, metrics = WakeTracker(), OperatorMetrics()
    on_change = wake_watch(wakes, metrics)
    on_change(snapshot(2), "ml", "llm")  # not woken: nothing measured
    wakes.started("ml", "llm", 2, now=0.0)
    on_change(snapshot(1), "ml", "llm")
    assert wakes.pending("ml", "llm")
    on_change(snapshot(2), "ml", "llm")
    assert not wakes.pending("ml", "llm")
    assert metrics.wake_seconds._sum.get() > 0  # observed once, in real seconds since 0.0
    wakes.started("ml", "gone", 1, now=0.0)
    on_change(None, "ml", "gone")  # deleted before it was ready
    assert not wakes.pending("ml", "gone")


def test_an_invalid_policy_status_is_written_only_when_it_changes() -> None:
    first = invalid_policy_status("spec.interval must be longer than 0s", CREATED)
    later = invalid_policy_status("spec.interval must be longer than 0s", datetime.now(UTC))
    assert not _conditions_differ(later, first)  # only the transition time moved
    other = invalid_policy_status("spec.idleFor: '9h' is longer than 366 days", CREATED)
    assert _conditions_differ(other, first)
    assert _conditions_differ(first, None)
