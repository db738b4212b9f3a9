"""Wake latency with fake time: a woken target is observed once, when all its replicas
are ready again; a target scaled down again (or deleted) before that is dropped."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import cast

from gpuplane.downscaler.cycle import PolicyEvaluator, PolicyRef, PolicyState
from gpuplane.downscaler.kubeio import KubeWriter
from gpuplane.downscaler.metrics import OperatorMetrics
from gpuplane.downscaler.snapshot import DeploymentSnapshot

CREATED = datetime(2026, 11, 26, tzinfo=UTC)


def deployment(name: str, replicas: int, ready: int) -> DeploymentSnapshot:
    return DeploymentSnapshot(
        "ml", name, f"uid-{name}", {}, replicas, CREATED, None, 1, ready_replicas=ready
    )


def histogram_count(metrics: OperatorMetrics) -> tuple[float, float]:
    count = metrics.registry.get_sample_value("gpuplane_downscaler_wake_seconds_count")
    total = metrics.registry.get_sample_value("gpuplane_downscaler_wake_seconds_sum")
    return float(count or 0), float(total or 0)


def test_woken_target_observed_once_when_ready() -> None:
    now = [100.0]
    metrics = OperatorMetrics()
    state = PolicyState(waking={"llm": (100.0, 2), "gone": (100.0, 1), "again": (100.0, 1)})
    evaluator = PolicyEvaluator(
        PolicyRef("ml", "p", "uid"),
        cast(KubeWriter, None),  # never written to: only the wake bookkeeping runs
        metrics,
        state,
        monotonic=lambda: now[0],
    )
    now[0] = 103.0
    evaluator._observe_woken([deployment("llm", 2, 1), deployment("again", 0, 0)])
    assert histogram_count(metrics) == (0.0, 0.0)  # one of two replicas ready: not yet
    assert set(state.waking) == {"llm"}  # "gone" deleted, "again" scaled down again
    now[0] = 104.5
    evaluator._observe_woken([deployment("llm", 2, 2)])
    assert histogram_count(metrics) == (1.0, 4.5)
    assert state.waking == {}
    evaluator._observe_woken([deployment("llm", 2, 2)])
    assert histogram_count(metrics) == (1.0, 4.5)


def test_every_verdict_and_restore_cause_exists_at_zero() -> None:
    registry = OperatorMetrics().registry
    for verdict in ("Active", "Idle", "Unknown"):
        assert (
            registry.get_sample_value("gpuplane_downscaler_decisions_total", {"verdict": verdict})
            == 0.0
        )
    for cause in ("wake", "active", "metrics"):
        assert (
            registry.get_sample_value("gpuplane_downscaler_restores_total", {"cause": cause}) == 0.0
        )
