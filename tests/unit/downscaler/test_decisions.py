"""The downscaler's pure logic with fake time: policy parsing, Prometheus vectors,
signal readings (no series, query error, unreachable, stale), the verdict rule, the
ledger rules, and every decision: grace period, idleFor streak, Unknown never scales
down, already-at-zero, wake, active-while-down, metrics loss Restore/Hold, manual scale
released, restore to exactly the recorded count.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from gpuplane.downscaler.decide import (
    Action,
    Memory,
    Observation,
    RestoreCause,
    Target,
    TargetState,
    decide,
    decide_on_delete,
)
from gpuplane.downscaler.kube_api import deployment_patch
from gpuplane.downscaler.ledger import (
    ledger_value,
    parse_annotation,
    restore_target,
    value_to_record,
)
from gpuplane.downscaler.policy import (
    MetricsLossAction,
    PolicyError,
    parse_duration,
    parse_policy,
    prometheus_allowed,
    selector_matches,
)
from gpuplane.downscaler.prometheus import answer_of
from gpuplane.downscaler.readings import (
    QueryResult,
    SignalReading,
    Verdict,
    WakeReading,
    read_signal,
    read_wake,
    vector_values,
    verdict_of,
)
from gpuplane.shared.wake_annotation import WAKE_REQUEST_ANNOTATION, parse_wake_request

T0 = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
SPEC = {
    "selector": {"matchLabels": {"app.kubernetes.io/part-of": "inference"}},
    "interval": "15s",
    "idleFor": "10m",
    "gracePeriod": "15m",
    "signals": [
        {"name": "requests", "query": "sum by (deployment) (rate(x[2m]))", "idleBelow": 0.05},
        {"name": "gpu", "query": "avg by (deployment) (DCGM_FI_DEV_GPU_UTIL)", "idleBelow": 5},
    ],
    "wake": {"query": "sum by (deployment) (rate(g[1m]))", "above": 0},
    "onMetricsLoss": {"action": "Restore", "after": "5m"},
}
POLICY = parse_policy(SPEC)
OLD = T0 - timedelta(hours=1)  # created long before: out of the grace period


def reading(name: str, value: float | None, threshold: float = 1.0) -> SignalReading:
    return SignalReading(name, value, threshold, "" if value is not None else "no series")


IDLE = (reading("requests", 0.0, 0.05), reading("gpu", 1.0, 5))
ACTIVE = (reading("requests", 3.0, 0.05), reading("gpu", 1.0, 5))
UNKNOWN = (reading("requests", 0.0, 0.05), reading("gpu", None, 5))


def seen(
    readings: tuple[SignalReading, ...], wake: float | None = 0.0, lost: datetime | None = None
) -> Observation:
    return Observation(readings, WakeReading(wake, 0.0), lost)


def test_policy_parsing_and_durations() -> None:
    assert POLICY.interval == timedelta(seconds=15)
    assert POLICY.idle_for == timedelta(minutes=10)
    assert POLICY.stale_after == timedelta(seconds=30)
    assert POLICY.signals[0].target_label == "deployment"
    assert POLICY.metrics_loss_action is MetricsLossAction.RESTORE
    assert parse_duration("1h30m5s", "x") == timedelta(hours=1, minutes=30, seconds=5)
    with pytest.raises(PolicyError, match=r"spec.interval: '15 seconds' is not a duration"):
        parse_policy({**SPEC, "interval": "15 seconds"})
    with pytest.raises(PolicyError, match=r"idleFor must be at least spec\.interval"):
        parse_policy({**SPEC, "idleFor": "5s"})
    with pytest.raises(PolicyError, match="at least one signal"):
        parse_policy({**SPEC, "signals": []})


def test_selector_with_expressions() -> None:
    policy = parse_policy(
        {
            **SPEC,
            "selector": {
                "matchExpressions": [{"key": "tier", "operator": "In", "values": ["gpu"]}]
            },
        }
    )
    assert selector_matches(policy, {"tier": "gpu"})
    assert not selector_matches(policy, {"tier": "cpu"})
    assert selector_matches(POLICY, {"app.kubernetes.io/part-of": "inference", "x": "y"})
    assert not selector_matches(POLICY, {})


def test_vector_values_keyed_by_target_label() -> None:
    payload = {
        "status": "success",
        "data": {
            "resultType": "vector",
            "result": [
                {"metric": {"deployment": "llm"}, "value": [T0.timestamp(), "0.5"]},
                {"metric": {"deployment": "nan"}, "value": [T0.timestamp(), "NaN"]},
                {"metric": {"pod": "no-label"}, "value": [T0.timestamp(), "9"]},
            ],
        },
    }
    assert vector_values(payload, "deployment") == {"llm": (0.5, T0)}


def test_signal_readings_unknown_cases() -> None:
    signal = POLICY.signals[0]
    fresh = QueryResult({"llm": (0.01, T0)})
    assert read_signal(signal, fresh, "llm", T0, POLICY.stale_after).value == 0.01
    assert read_signal(signal, fresh, "other", T0, POLICY.stale_after).unknown_reason == "no series"
    stale = read_signal(signal, fresh, "llm", T0 + timedelta(seconds=31), POLICY.stale_after)
    assert stale.value is None and stale.unknown_reason == "stale sample (31s old)"
    broken = read_signal(signal, QueryResult(error="parse error"), "llm", T0, POLICY.stale_after)
    assert broken.unknown_reason == "query error: parse error"
    down = read_signal(signal, QueryResult(unreachable=True), "llm", T0, POLICY.stale_after)
    assert down.unknown_reason == "Prometheus unreachable"


def test_verdict_rule() -> None:
    assert verdict_of(list(IDLE)) is Verdict.IDLE
    assert verdict_of(list(ACTIVE)) is Verdict.ACTIVE
    assert verdict_of(list(UNKNOWN)) is Verdict.UNKNOWN
    # any active wins over unknown
    assert verdict_of([reading("a", 5.0), reading("b", None)]) is Verdict.ACTIVE
    assert verdict_of([]) is Verdict.UNKNOWN


def test_ledger_rules() -> None:
    assert value_to_record(3, None) == 3
    assert value_to_record(0, None) is None  # already at 0: never recorded
    assert value_to_record(2, 5) is None  # a smaller count never overwrites
    assert value_to_record(5, 5) is None
    assert value_to_record(6, 5) == 6
    assert restore_target(4) == 4
    assert restore_target(None) is None
    assert parse_annotation({"gpuplane.io/original-replicas": "3"}) == 3
    assert parse_annotation({"gpuplane.io/original-replicas": "0"}) is None
    assert parse_annotation({"gpuplane.io/original-replicas": "x"}) is None
    # A hand-set count past the bound is no record (it would be the restore's target).
    assert parse_annotation({"gpuplane.io/original-replicas": "1000"}) == 1000
    assert parse_annotation({"gpuplane.io/original-replicas": "10000"}) is None


def test_the_operators_status_record_wins_over_the_annotation() -> None:
    assert ledger_value(annotation=7, status=3) == 3
    assert ledger_value(annotation=7, status=None) == 7
    assert ledger_value(annotation=None, status=None) is None


def test_idle_streak_then_scale_down() -> None:
    target = Target("llm", 3, OLD, None)
    first = decide(target, seen(IDLE), POLICY, Memory(), T0)
    assert first.action is None and first.memory.idle_since == T0
    assert first.detail.startswith("idle for 0s of 600s")
    # the status reason carries no live value: the next idle cycle reads the same
    assert first.reason == "idle since idleSince, scaled down after idleFor 600s; " + (
        "requests < 0.05; gpu < 5"
    )
    later = decide(target, seen(IDLE), POLICY, first.memory, T0 + timedelta(minutes=9, seconds=59))
    assert later.action is None and later.reason == first.reason
    due = decide(target, seen(IDLE), POLICY, first.memory, T0 + timedelta(minutes=10))
    assert due.action is Action.SCALE_DOWN
    assert due.record == 3
    assert due.state is TargetState.SCALED_DOWN
    assert "requests=0 < 0.05; gpu=1 < 5" in due.detail
    assert due.reason == "scaled down; requests < 0.05; gpu < 5"


def test_unknown_and_active_break_the_streak_and_never_scale() -> None:
    target = Target("llm", 3, OLD, None)
    streak = Memory(idle_since=T0 - timedelta(hours=2))
    for readings in (UNKNOWN, ACTIVE):
        decision = decide(target, seen(readings), POLICY, streak, T0)
        assert decision.action is None
        assert decision.memory.idle_since is None


def test_grace_period_protects_new_and_released_deployments() -> None:
    young = Target("llm", 3, T0 - timedelta(minutes=14), None)
    memory = Memory(idle_since=T0 - timedelta(hours=1))
    assert decide(young, seen(IDLE), POLICY, memory, T0).action is None
    assert (
        decide(young, seen(IDLE), POLICY, memory, T0 + timedelta(minutes=1)).action
        is Action.SCALE_DOWN
    )
    released = Memory(idle_since=T0 - timedelta(hours=1), protected_until=T0 + timedelta(minutes=5))
    old = Target("llm", 3, OLD, None)
    assert "grace period" in decide(old, seen(IDLE), POLICY, released, T0).reason


def test_deployment_already_at_zero_is_left_alone() -> None:
    decision = decide(Target("llm", 0, OLD, None), seen(IDLE), POLICY, Memory(OLD), T0)
    assert decision.action is None
    assert decision.record is None
    assert "already at 0" in decision.reason


def test_wake_restores_exactly_the_recorded_count() -> None:
    down = Target("llm", 0, OLD, 4)
    quiet = decide(down, seen(UNKNOWN, wake=0.0), POLICY, Memory(), T0)
    assert quiet.action is None and quiet.state is TargetState.SCALED_DOWN
    woken = decide(down, seen(UNKNOWN, wake=0.3), POLICY, Memory(), T0)
    assert woken.action is Action.RESTORE and woken.restore_to == 4
    assert woken.detail.startswith("wake: wake=0.3 > 0")
    assert woken.cause is RestoreCause.WAKE
    assert woken.reason == "restored 4 replica(s): wake"
    # no wake series at all is not a wake
    assert decide(down, seen(UNKNOWN, wake=None), POLICY, Memory(), T0).action is None


def test_active_while_scaled_down_restores() -> None:
    decision = decide(Target("llm", 0, OLD, 2), seen(ACTIVE), POLICY, Memory(), T0)
    assert decision.action is Action.RESTORE and decision.restore_to == 2
    assert decision.cause is RestoreCause.ACTIVE


def test_metrics_loss_restore_after_and_hold() -> None:
    down = Target("llm", 0, OLD, 2)
    blind = (reading("requests", None), reading("gpu", None))
    early = decide(down, seen(blind, None, lost=T0 - timedelta(minutes=4)), POLICY, Memory(), T0)
    assert early.action is None
    late = decide(down, seen(blind, None, lost=T0 - timedelta(minutes=5)), POLICY, Memory(), T0)
    assert late.action is Action.RESTORE and late.restore_to == 2
    assert "metrics lost for 300s" in late.detail and late.cause is RestoreCause.METRICS
    hold = parse_policy({**SPEC, "onMetricsLoss": {"action": "Hold", "after": "5m"}})
    held = decide(down, seen(blind, None, lost=T0 - timedelta(hours=1)), hold, Memory(), T0)
    assert held.action is None and held.state is TargetState.SCALED_DOWN


def test_manual_scale_while_scaled_down_is_respected() -> None:
    decision = decide(Target("llm", 5, OLD, 2), seen(IDLE), POLICY, Memory(), T0)
    assert decision.action is Action.RELEASE
    assert decision.state is TargetState.RUNNING
    assert decision.memory.protected_until == T0 + timedelta(minutes=15)
    # and that protection holds the next cycles even though it is idle
    after = decide(
        Target("llm", 5, OLD, None), seen(IDLE), POLICY, decision.memory, T0 + timedelta(minutes=14)
    )
    assert after.action is None


def test_wake_reading_is_strictly_above_and_unknown_is_no_wake() -> None:
    wake = POLICY.wake
    assert wake is not None
    answer = QueryResult({"llm": (0.0, T0), "old": (9.0, T0 - timedelta(minutes=1))})
    assert read_wake(wake, answer, "llm", T0, POLICY.stale_after) == WakeReading(0.0, 0.0)
    assert not WakeReading(0.0, 0.0).woken and WakeReading(0.01, 0.0).woken
    assert read_wake(wake, answer, "old", T0, POLICY.stale_after).value is None  # stale
    assert read_wake(wake, answer, "none", T0, POLICY.stale_after).value is None
    broken = QueryResult(error="bad", unreachable=True)
    assert not read_wake(wake, broken, "llm", T0, POLICY.stale_after).woken
    assert WakeReading(0.3, 0.0).describe() == "wake=0.3 > 0"


def test_status_reason_is_stable_while_readings_move() -> None:
    target = Target("llm", 3, OLD, None)
    busy = decide(target, seen((reading("requests", 3.0, 0.05),)), POLICY, Memory(), T0)
    busier = decide(target, seen((reading("requests", 3.7, 0.05),)), POLICY, Memory(), T0)
    assert busy.reason == busier.reason == "requests >= 0.05"
    assert busy.detail != busier.detail
    stale = SignalReading("requests", None, 0.05, "stale sample (31s old)")
    assert stale.state() == "requests=unknown (stale sample)"


def test_policy_deletion_restores_or_releases_exactly_the_ledger() -> None:
    restore = decide_on_delete(Target("llm", 0, OLD, 4), "idle")
    assert restore.action is Action.RESTORE and restore.restore_to == 4
    assert restore.cause is RestoreCause.POLICY_DELETED
    release = decide_on_delete(Target("llm", 2, OLD, 4), "idle")
    assert release.action is Action.RELEASE and release.restore_to is None
    assert decide_on_delete(Target("llm", 0, OLD, None), "idle").action is None


def test_a_wake_request_restores_at_once_even_blind() -> None:
    down = Target("llm", 0, OLD, 3)
    blind = (reading("requests", None), reading("gpu", None))
    asked = Observation(blind, None, None, wake_requested=T0 - timedelta(seconds=1))
    decision = decide(down, asked, POLICY, Memory(), T0)
    assert decision.action is Action.RESTORE and decision.restore_to == 3
    assert decision.cause is RestoreCause.REQUEST
    assert decision.reason == "restored 3 replica(s): request"
    # A running Deployment with a request left on it is not touched by it.
    running = decide(Target("llm", 2, OLD, None), asked, POLICY, Memory(), T0)
    assert running.action is None


def test_every_action_clears_a_wake_request_and_broken_ones_are_none() -> None:
    for ledger in (3, None):
        patch = deployment_patch("7", replicas=0 if ledger else 3, ledger=ledger)
        assert patch["metadata"]["annotations"][WAKE_REQUEST_ANNOTATION] is None
    assert parse_wake_request({WAKE_REQUEST_ANNOTATION: "2026-11-28T09:00:00Z"}) == datetime(
        2026, 11, 28, 9, 0, tzinfo=UTC
    )
    assert parse_wake_request({WAKE_REQUEST_ANNOTATION: "soon"}) is None
    assert parse_wake_request({}) is None


@pytest.mark.parametrize(
    ("url", "allowed"),
    [
        ("http://prometheus:9090", True),  # the operator's own
        ("http://127.0.0.1:9091", True),  # any port of an allowed host
        ("http://127.0.0.1:9091/", True),
        ("https://127.0.0.1:9091", False),  # another scheme
        ("http://127.0.0.1:9091/api/v1/admin", False),  # a path stretches the host
        ("http://127.0.0.1:9091?x=1", False),
        ("http://user@127.0.0.1:9091", False),
        ("http://169.254.169.254", False),  # cloud metadata: never
        ("http://kube-prometheus:9090", True),  # allowed with its exact port
        ("http://kube-prometheus:9091", False),
        ("http://127.0.0.1:99999", False),  # not a port
    ],
)
def test_a_policy_may_name_only_allowed_prometheus_urls(url: str, allowed: bool) -> None:
    entries = frozenset({"http://127.0.0.1:*", "http://kube-prometheus:9090"})
    assert prometheus_allowed(url, "http://prometheus:9090", entries) is allowed


def test_a_prometheus_error_is_bounded_and_quoted() -> None:
    hostile = json.dumps({"status": "error", "error": "x" * 10_000 + "\n\u001b[31mboom"})
    result = answer_of(400, hostile, "deployment")
    assert result.error is not None and len(result.error) < 300
    assert result.error.startswith("Prometheus answered 400: '")
    assert "\u001b" not in result.error and "\n" not in result.error


def run_cycles(held_until: timedelta | None, minutes: int) -> list[timedelta]:
    """A woken Deployment judged every 15 s with idle readings (its held requests are not
    answered yet, so nothing counts them); while ``held_until`` the activator repeats its
    wake request every 5 s. When each scale-down happens, from the restore."""
    memory, downs = Memory(), []
    target = Target("llm", 1, OLD, None)
    for step in range(minutes * 4):
        now = T0 + timedelta(seconds=15 * step)
        since = now - T0
        asked = None
        if held_until is not None:
            last = min(since, held_until)
            asked = T0 + timedelta(seconds=5 * (last.total_seconds() // 5))
        decision = decide(target, Observation(IDLE, None, None, asked), POLICY, memory, now)
        memory = decision.memory
        if decision.action is Action.SCALE_DOWN:
            downs.append(since)
            memory = Memory()
    return downs


def test_requests_held_by_the_activator_keep_a_woken_deployment_up() -> None:
    """A cold start longer than idleFor: the held requests are the only sign of use. Without
    the activator's repeated wake request the Deployment would be scaled down under them
    (the first line: idleFor after the restore); with it, idle time starts only once the
    last request is no longer held (its last repeat more than 15 s old)."""
    assert run_cycles(None, 12) == [timedelta(minutes=10)]
    downs = run_cycles(timedelta(minutes=12), 25)
    assert downs and downs[0] >= timedelta(minutes=12) + POLICY.idle_for
    assert downs[0] <= timedelta(minutes=12, seconds=30) + POLICY.idle_for
    held = decide(
        Target("llm", 1, OLD, None),
        Observation(IDLE, None, None, T0 - timedelta(seconds=5)),
        POLICY,
        Memory(idle_since=T0 - timedelta(hours=1)),
        T0,
    )
    assert held.action is None and held.memory.idle_since is None
    assert held.reason.startswith("requests held by the activator")
