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
from gpuplane.downscaler.readings import SignalReading, Verdict, WakeReading, verdict_of
from gpuplane.shared.wake_annotation import WAKE_REQUEST_FRESH_SECONDS

WAKE_REQUEST_FRESH = timedelta(seconds=WAKE_REQUEST_FRESH_SECONDS)


class TargetState(StrEnum):
    RUNNING = "Running"
    SCALED_DOWN = "ScaledDown"


class Action(StrEnum):
    SCALE_DOWN = "ScaleDown"
    RESTORE = "Restore"
    RELEASE = "Release"  # a user scaled it while ScaledDown: forget the ledger


class RestoreCause(StrEnum):
    """Why a ScaledDown target comes back (the restores_total label)."""

    WAKE = "wake"
    REQUEST = "request"  # the activator holds requests for it (wake_request)
    ACTIVE = "active"
    METRICS = "metrics"
    POLICY_DELETED = "policy-deleted"


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
    wake: WakeReading | None  # None: the policy has no wake query
    metrics_lost_since: datetime | None  # Prometheus unreachable since then
    wake_requested: datetime | None = None  # the activator's annotation


@dataclass(frozen=True)
class Decision:
    verdict: Verdict
    state: TargetState  # after the action
    action: Action | None
    # Why, without live readings: what the policy status shows, so the status changes only
    # when a decision does.
    reason: str
    # Why, with the readings behind it: an action's lastAction, its Event and log line.
    detail: str
    memory: Memory
    record: int | None = None  # ledger value written together with replicas 0
    restore_to: int | None = None
    cause: RestoreCause | None = None  # set exactly when action is RESTORE


@dataclass(frozen=True)
class Inputs:
    """The readings of one target, with values (``live``) and without (``stable``)."""

    live: str
    stable: str


def decide(
    target: Target, seen: Observation, policy: Policy, memory: Memory, now: datetime
) -> Decision:
    verdict = verdict_of(list(seen.readings))
    inputs = Inputs(
        "; ".join(reading.describe() for reading in seen.readings),
        "; ".join(reading.state() for reading in seen.readings),
    )
    if target.recorded is not None:
        if target.replicas > 0:
            released = (
                f"scaled to {target.replicas} by someone else while scaled down: ledger "
                f"({target.recorded}) released, grace period restarts"
            )
            return Decision(
                verdict,
                TargetState.RUNNING,
                Action.RELEASE,
                released,
                released,
                Memory(idle_since=None, protected_until=now + policy.grace_period),
            )
        return _scaled_down(target, seen, policy, verdict=verdict, inputs=inputs, now=now)
    return _running(target, seen, policy, memory, verdict=verdict, inputs=inputs, now=now)


def _scaled_down(
    target: Target,
    seen: Observation,
    policy: Policy,
    *,
    verdict: Verdict,
    inputs: Inputs,
    now: datetime,
) -> Decision:
    restore_to = restore_target(target.recorded)
    cause, why = _restore_cause(seen, policy, verdict=verdict, inputs=inputs, now=now)
    if cause is not None and restore_to is not None:
        reason = f"restored {restore_to} replica(s): {cause.value}"
        return Decision(
            verdict,
            TargetState.RUNNING,
            Action.RESTORE,
            reason,
            f"{why}; restoring {restore_to} replica(s)",
            Memory(idle_since=None, protected_until=None),
            restore_to=restore_to,
            cause=cause,
        )
    return Decision(
        verdict,
        TargetState.SCALED_DOWN,
        None,
        f"scaled down; {inputs.stable}",
        f"scaled down; {inputs.live}",
        Memory(),
    )


def _restore_cause(
    seen: Observation, policy: Policy, *, verdict: Verdict, inputs: Inputs, now: datetime
) -> tuple[RestoreCause | None, str]:
    """The first cause that brings a ScaledDown target back, with its readings."""
    if seen.wake_requested is not None:
        # Requests are being held right now: no need to wait for a scrape.
        return (
            RestoreCause.REQUEST,
            f"wake requested by the activator at {seen.wake_requested:%H:%M:%S}",
        )
    if seen.wake is not None and seen.wake.woken:
        return RestoreCause.WAKE, f"wake: {seen.wake.describe()}"
    if verdict is Verdict.ACTIVE:
        return RestoreCause.ACTIVE, f"active while scaled down: {inputs.live}"
    lost = seen.metrics_lost_since
    if (
        lost is not None
        and policy.metrics_loss_action is MetricsLossAction.RESTORE
        and now - lost >= policy.metrics_loss_after
    ):
        after = _secs(policy.metrics_loss_after)
        return (
            RestoreCause.METRICS,
            f"metrics lost for {_secs(now - lost)} (onMetricsLoss: Restore after {after})",
        )
    return None, ""


def _running(
    target: Target,
    seen: Observation,
    policy: Policy,
    memory: Memory,
    *,
    verdict: Verdict,
    inputs: Inputs,
    now: datetime,
) -> Decision:
    protected_until = max(
        target.created + policy.grace_period,
        memory.protected_until or target.created,
    )
    if verdict is not Verdict.IDLE:
        return Decision(
            verdict,
            TargetState.RUNNING,
            None,
            inputs.stable,
            inputs.live,
            Memory(None, memory.protected_until),
        )
    asked = seen.wake_requested
    if asked is not None and now - asked <= WAKE_REQUEST_FRESH:
        # The activator holds requests for it right now (it repeats its wake request while
        # it does): a service still starting after a wake has no answered requests to
        # count yet, and must not be scaled down under them. Idle time starts after them.
        return Decision(
            verdict,
            TargetState.RUNNING,
            None,
            f"requests held by the activator; {inputs.stable}",
            f"requests held by the activator (wake requested at {asked:%H:%M:%S}); {inputs.live}",
            Memory(None, memory.protected_until),
        )
    idle_since = memory.idle_since or now
    kept = Memory(idle_since, memory.protected_until)
    if now < protected_until:
        left = _secs(protected_until - now)
        return Decision(
            verdict,
            TargetState.RUNNING,
            None,
            f"in grace period (until protectedUntil); {inputs.stable}",
            f"in grace period for {left}; {inputs.live}",
            kept,
        )
    if target.replicas <= 0:
        return Decision(
            verdict,
            TargetState.RUNNING,
            None,
            f"already at 0 replicas; {inputs.stable}",
            f"already at 0 replicas; {inputs.live}",
            kept,
        )
    idle = now - idle_since
    if idle < policy.idle_for:
        return Decision(
            verdict,
            TargetState.RUNNING,
            None,
            f"idle since idleSince, scaled down after idleFor {_secs(policy.idle_for)}; "
            f"{inputs.stable}",
            f"idle for {_secs(idle)} of {_secs(policy.idle_for)}; {inputs.live}",
            kept,
        )
    record = value_to_record(target.replicas, target.recorded)
    return Decision(
        verdict,
        TargetState.SCALED_DOWN,
        Action.SCALE_DOWN,
        f"scaled down; {inputs.stable}",  # as every later cycle reads: no second write
        f"idle for {_secs(idle)} (idleFor {_secs(policy.idle_for)}): {inputs.live}; "
        f"scaling {target.replicas} -> 0",
        Memory(idle_since=None, protected_until=memory.protected_until),
        record=record if record is not None else target.replicas,
    )


def _secs(delta: timedelta) -> str:
    return f"{int(delta.total_seconds())}s"


def decide_on_delete(target: Target, policy_name: str) -> Decision:
    """The policy is being deleted: a ScaledDown target comes back to its recorded count;
    a ledger left on a running one is released. Nothing else changes."""
    restore_to = restore_target(target.recorded)
    if restore_to is None:
        return Decision(Verdict.UNKNOWN, TargetState.RUNNING, None, "", "", Memory())
    if target.replicas > 0:
        why = f"policy {policy_name} deleted; ledger ({restore_to}) released"
        return Decision(Verdict.UNKNOWN, TargetState.RUNNING, Action.RELEASE, why, why, Memory())
    why = f"policy {policy_name} deleted; restored {restore_to} replica(s)"
    return Decision(
        Verdict.UNKNOWN,
        TargetState.RUNNING,
        Action.RESTORE,
        why,
        why,
        Memory(),
        restore_to=restore_to,
        cause=RestoreCause.POLICY_DELETED,
    )


def not_written(decision: Decision, memory: Memory, error: str) -> Decision:
    """An action whose write failed: the target stays as it was (state and memory), so
    the next cycle decides again."""
    before = TargetState.SCALED_DOWN if decision.action is Action.RESTORE else TargetState.RUNNING
    action = decision.action.value if decision.action is not None else "action"
    why = f"{action} not written ({error}); retried next cycle"
    return Decision(decision.verdict, before, None, why, why, memory)
