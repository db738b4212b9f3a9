"""The DownscalePolicy status: what an evaluator remembers between cycles, rebuilt from
the status after a restart, and the status built from a cycle's decisions (pure).

The status holds decisions, the ledger copy, conditions and the last action per target;
never a live reading, so an unchanged cluster writes no status at all.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from gpuplane.downscaler.decide import Action, Decision, Memory, TargetState
from gpuplane.shared.kube_time import format_time, parse_time

REASON_CHARS = 120
MESSAGE_CHARS = 1024


@dataclass
class PolicyState:
    """What an evaluator remembers; rebuilt from the policy status after a restart."""

    memory: dict[str, Memory] = field(default_factory=dict)
    status_ledger: dict[str, int] = field(default_factory=dict)
    last_action: dict[str, dict[str, str]] = field(default_factory=dict)
    metrics_lost_since: datetime | None = None
    conditions: dict[str, dict[str, str]] = field(default_factory=dict)
    last_status: dict[str, Any] | None = None

    @classmethod
    def from_status(cls, status: dict[str, Any] | None) -> PolicyState:
        state = cls()
        for target in (status or {}).get("targets") or []:
            name = target.get("name")
            if not name:
                continue
            state.memory[name] = Memory(
                idle_since=parse_time(target.get("idleSince")),
                protected_until=parse_time(target.get("protectedUntil")),
            )
            if target.get("originalReplicas"):
                state.status_ledger[name] = int(target["originalReplicas"])
            if target.get("lastAction"):
                state.last_action[name] = dict(target["lastAction"])
        for condition in (status or {}).get("conditions") or []:
            state.conditions[condition["type"]] = dict(condition)
        metrics = state.conditions.get("MetricsAvailable")
        if metrics and metrics.get("status") == "False":
            state.metrics_lost_since = parse_time(metrics.get("lastTransitionTime"))
        return state

    def forget_missing(self, live: set[str]) -> None:
        """Targets no longer selected (deleted, relabelled) leave the memory."""
        for name in [name for name in self.memory if name not in live]:
            self.memory.pop(name, None)
            self.status_ledger.pop(name, None)
            self.last_action.pop(name, None)

    def acted(self, name: str, kind: str, decision: Decision, now: datetime) -> None:
        """Record a written action: its ledger copy and the lastAction entry."""
        if decision.action is Action.SCALE_DOWN and decision.record is not None:
            self.status_ledger[name] = decision.record
        elif decision.action in (Action.RESTORE, Action.RELEASE):
            self.status_ledger.pop(name, None)
        self.last_action[name] = {
            "type": kind,
            "time": format_time(now),
            "reason": decision.detail[:REASON_CHARS],
        }

    def condition(
        self, kind: str, ok: bool, reason: str, message: str, now: datetime
    ) -> dict[str, str]:
        """A condition whose lastTransitionTime moves only when its status flips."""
        status = "True" if ok else "False"
        previous = self.conditions.get(kind)
        since = (
            previous["lastTransitionTime"]
            if previous and previous.get("status") == status
            else format_time(now)
        )
        condition = {
            "type": kind,
            "status": status,
            "reason": reason,
            "message": message[:MESSAGE_CHARS],
            "lastTransitionTime": since,
        }
        self.conditions[kind] = condition
        return condition


def target_entry(
    name: str, decision: Decision, state: PolicyState, *, dry_run: bool
) -> dict[str, Any]:
    memory = decision.memory
    shown = decision.state
    if decision.action is Action.SCALE_DOWN and dry_run:
        shown = TargetState.RUNNING  # dryRun decides but never scales
    return {
        "name": name,
        "verdict": decision.verdict.value,
        "idleSince": format_time(memory.idle_since) if memory.idle_since else None,
        "protectedUntil": format_time(memory.protected_until) if memory.protected_until else None,
        "originalReplicas": state.status_ledger.get(name),
        "state": shown.value,
        "reason": decision.reason[:REASON_CHARS],
        "lastAction": state.last_action.get(name),
    }


def policy_status(
    decisions: list[tuple[str, Decision]],
    state: PolicyState,
    *,
    dry_run: bool,
    query_errors: list[str],
    unreachable_error: str | None,
    now: datetime,
) -> dict[str, Any]:
    """The whole status of one cycle: Ready, MetricsAvailable and a target entry each."""
    ready = state.condition(
        "Ready",
        not query_errors,
        "QueryError" if query_errors else "Evaluating",
        "; ".join(query_errors) if query_errors else f"{len(decisions)} target(s) evaluated",
        now,
    )
    metrics = state.condition(
        "MetricsAvailable",
        unreachable_error is None,
        "QueriesAnswered" if unreachable_error is None else "PrometheusUnreachable",
        "every query answered"
        if unreachable_error is None
        else f"Prometheus unreachable: {unreachable_error}",
        now,
    )
    return {
        "conditions": [ready, metrics],
        "targets": [
            target_entry(name, decision, state, dry_run=dry_run) for name, decision in decisions
        ],
    }


def invalid_policy_status(error: str, now: datetime) -> dict[str, Any]:
    return {
        "conditions": [
            {
                "type": "Ready",
                "status": "False",
                "reason": "InvalidPolicy",
                "message": error[:MESSAGE_CHARS],
                "lastTransitionTime": format_time(now),
            }
        ]
    }
