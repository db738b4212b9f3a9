"""The per-target decision, a pure function of (observations, policy, state, now).

State is derived, not stored: a target is ScaledDown exactly when a ledger entry exists
and its Deployment is at 0 replicas. A ledger entry on a Deployment above 0 means a
user scaled it (or a restore got half-way): the user wins, the ledger is cleared and the
grace period starts again.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from gpuplane.downscaler.ledger import restore_target, value_to_record
from gpuplane.downscaler.policy import MetricsLossAction, Policy
from gpuplane.downscaler.readings import SignalReading, Verdict, verdict_of


class TargetState(StrEnum):
    RUNNING = "Running"
    SCALED_DOWN = "ScaledDown"


class Action(StrEnum):
    SCALE_DOWN = "ScaleDown"
    RESTORE = "Restore"
    RELEASE = "Release"  # a user scaled it while ScaledDown: forget the ledger


@dataclass(frozen=True)
class Target:
    """What the cache and the ledger say about one selected Deployment."""

    name: str
    replicas: int
    created: datetime
    recorded: int | None  # the ledger's original replica count


@dataclass(frozen=True)
class Memory:
    """What the operator remembers between cycles (kept in the policy status)."""

    idle_since: datetime | None = None
    protected_until: datetime | None = None


@dataclass(frozen=True)
class Observation:
    readings: tuple[SignalReading, ...]
    wake: SignalReading | None  # threshold = wake.above; active when value > above
    metrics_lost_since: datetime | None  # Prometheus unreachable since then


@dataclass(frozen=True)
class Decision:
    verdict: Verdict
    state: TargetState  # after the action
    action: Action | None
    reason: str
    memory: Memory
    record: int | None = None  # ledger value to write before scaling down
    restore_to: int | None = None


def _woken(wake: SignalReading | None) -> bool:
    return wake is not None and wake.value is not None and wake.value > wake.threshold


def decide(
    target: Target, seen: Observation, policy: Policy, memory: Memory, now: datetime
) -> Decision:
    verdict = verdict_of(list(seen.readings))
    inputs = "; ".join(reading.describe() for reading in seen.readings)
    if target.recorded is not None:
        if target.replicas > 0:
            return Decision(
                verdict,
                TargetState.RUNNING,
                Action.RELEASE,
                f"scaled to {target.replicas} by someone else while scaled down: ledger "
                f"({target.recorded}) released, grace period restarts",
                Memory(idle_since=None, protected_until=now + policy.grace_period),
            )
        return _scaled_down(target, seen, policy, verdict=verdict, inputs=inputs, now=now)
    return _running(target, policy, memory, verdict=verdict, inputs=inputs, now=now)


def _scaled_down(
    target: Target,
    seen: Observation,
    policy: Policy,
    *,
    verdict: Verdict,
    inputs: str,
    now: datetime,
) -> Decision:
    restore_to = restore_target(target.recorded)
    reason = ""
    if _woken(seen.wake) and seen.wake is not None:
        reason = f"wake: {seen.wake.describe().replace('>=', '>')}"
    elif verdict is Verdict.ACTIVE:
        reason = f"active while scaled down: {inputs}"
    elif (
        seen.metrics_lost_since is not None
        and policy.metrics_loss_action is MetricsLossAction.RESTORE
        and now - seen.metrics_lost_since >= policy.metrics_loss_after
    ):
        lost = int((now - seen.metrics_lost_since).total_seconds())
        after = _secs(policy.metrics_loss_after)
        reason = f"metrics lost for {lost}s (onMetricsLoss: Restore after {after})"
    if reason and restore_to is not None:
        return Decision(
            verdict,
            TargetState.RUNNING,
            Action.RESTORE,
            f"{reason}; restoring {restore_to} replica(s)",
            Memory(idle_since=None, protected_until=None),
            restore_to=restore_to,
        )
    return Decision(verdict, TargetState.SCALED_DOWN, None, f"scaled down; {inputs}", Memory())


def _running(
    target: Target, policy: Policy, memory: Memory, *, verdict: Verdict, inputs: str, now: datetime
) -> Decision:
    protected_until = max(
        target.created + policy.grace_period,
        memory.protected_until or target.created,
    )
    if verdict is not Verdict.IDLE:
        return Decision(
            verdict, TargetState.RUNNING, None, inputs, Memory(None, memory.protected_until)
        )
    idle_since = memory.idle_since or now
    kept = Memory(idle_since, memory.protected_until)
    if now < protected_until:
        left = _secs(protected_until - now)
        return Decision(
            verdict, TargetState.RUNNING, None, f"in grace period for {left}; {inputs}", kept
        )
    if target.replicas <= 0:
        return Decision(
            verdict, TargetState.RUNNING, None, f"already at 0 replicas; {inputs}", kept
        )
    idle = now - idle_since
    if idle < policy.idle_for:
        return Decision(
            verdict,
            TargetState.RUNNING,
            None,
            f"idle for {_secs(idle)} of {_secs(policy.idle_for)}; {inputs}",
            kept,
        )
    record = value_to_record(target.replicas, target.recorded)
    return Decision(
        verdict,
        TargetState.SCALED_DOWN,
        Action.SCALE_DOWN,
        f"idle for {_secs(idle)} (idleFor {_secs(policy.idle_for)}): {inputs}; "
        f"scaling {target.replicas} -> 0",
        Memory(idle_since=None, protected_until=memory.protected_until),
        record=record if record is not None else target.replicas,
    )


def _secs(delta: timedelta) -> str:
    return f"{int(delta.total_seconds())}s"
