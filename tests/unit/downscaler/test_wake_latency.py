"""Wake latency with fake time: a woken target is measured once, when the watch shows all
its replicas ready; a target scaled down again, or deleted, before that is forgotten."""

from __future__ import annotations

from datetime import UTC, datetime

from gpuplane.downscaler.metrics import OperatorMetrics
from gpuplane.downscaler.snapshot import DeploymentSnapshot
from gpuplane.downscaler.wake import WakeTracker

CREATED = datetime(2026, 11, 26, tzinfo=UTC)


def deployment(name: str, replicas: int, ready: int, namespace: str = "ml") -> DeploymentSnapshot:
    return DeploymentSnapshot(
        namespace, name, f"uid-{name}", {}, replicas, CREATED, None, 1, ready_replicas=ready
    )


def test_tracker_measures_once_when_every_replica_is_ready() -> None:
    wakes = WakeTracker()
    wakes.started("ml", "llm", 2, now=100.0)
    assert wakes.seen(deployment("llm", 2, 1), now=101.0) is None  # one of two ready
    assert wakes.seen(deployment("llm", 2, 2, namespace="other"), now=101.0) is None
    assert wakes.seen(deployment("llm", 2, 2), now=102.5) == 2.5
    assert wakes.seen(deployment("llm", 2, 2), now=103.0) is None  # measured already


def test_tracker_forgets_targets_scaled_down_again_or_deleted() -> None:
    wakes = WakeTracker()
    wakes.started("ml", "again", 1, now=0.0)
    wakes.started("ml", "gone", 1, now=0.0)
    wakes.started("other", "gone", 1, now=0.0)
    assert wakes.seen(deployment("again", 0, 0), now=1.0) is None
    wakes.forget("ml", "gone")
    assert not wakes.pending("ml", "again") and not wakes.pending("ml", "gone")
    assert wakes.pending("other", "gone")
    assert set(wakes.waking) == {("other", "gone")}


def test_every_verdict_and_restore_cause_exists_at_zero() -> None:
    registry = OperatorMetrics().registry
    for verdict in ("Active", "Idle", "Unknown"):
        labels = {"verdict": verdict}
        assert registry.get_sample_value("gpuplane_downscaler_decisions_total", labels) == 0.0
    for cause in ("wake", "active", "metrics"):
        labels = {"cause": cause}
        assert registry.get_sample_value("gpuplane_downscaler_restores_total", labels) == 0.0
