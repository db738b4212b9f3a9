"""The DownscalePolicy spec as typed data (the CRD's schema already rejects bad input;
this parse is defensive and names the field when something still slips through)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import timedelta
from enum import StrEnum
from typing import Any

_DURATION = re.compile(r"^(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$")
DEFAULT_TARGET_LABEL = "deployment"


class PolicyError(ValueError):
    """A policy the operator cannot use; the message names the field."""


def parse_duration(text: str, where: str) -> timedelta:
    match = _DURATION.match(text or "")
    if not text or match is None:
        raise PolicyError(f"{where}: {text!r} is not a duration like 15s, 10m or 1h30m")
    hours, minutes, seconds = (int(part or 0) for part in match.groups())
    return timedelta(hours=hours, minutes=minutes, seconds=seconds)


class MetricsLossAction(StrEnum):
    RESTORE = "Restore"
    HOLD = "Hold"


@dataclass(frozen=True)
class Signal:
    name: str
    query: str
    idle_below: float
    target_label: str = DEFAULT_TARGET_LABEL


@dataclass(frozen=True)
class Wake:
    query: str
    above: float
    target_label: str = DEFAULT_TARGET_LABEL


@dataclass(frozen=True)
class Policy:
    selector: dict[str, str]
    interval: timedelta
    idle_for: timedelta
    grace_period: timedelta
    signals: tuple[Signal, ...]
    wake: Wake | None
    metrics_loss_action: MetricsLossAction = MetricsLossAction.RESTORE
    metrics_loss_after: timedelta = timedelta(minutes=5)
    dry_run: bool = False
    prometheus_url: str | None = None
    selector_expressions: tuple[dict[str, Any], ...] = field(default_factory=tuple)

    @property
    def stale_after(self) -> timedelta:
        """A sample older than this is stale (unknown), per the policy contract."""
        return 2 * self.interval


def parse_policy(spec: dict[str, Any]) -> Policy:
    selector = spec.get("selector") or {}
    signals = tuple(
        Signal(
            name=str(item["name"]),
            query=str(item["query"]),
            idle_below=float(item["idleBelow"]),
            target_label=str(item.get("targetLabel") or DEFAULT_TARGET_LABEL),
        )
        for item in spec.get("signals") or []
    )
    if not signals:
        raise PolicyError("spec.signals: at least one signal is required")
    wake_spec = spec.get("wake")
    wake = (
        Wake(
            query=str(wake_spec["query"]),
            above=float(wake_spec.get("above", 0)),
            target_label=str(wake_spec.get("targetLabel") or DEFAULT_TARGET_LABEL),
        )
        if wake_spec
        else None
    )
    loss = spec.get("onMetricsLoss") or {}
    policy = Policy(
        selector=dict(selector.get("matchLabels") or {}),
        selector_expressions=tuple(selector.get("matchExpressions") or ()),
        interval=parse_duration(str(spec.get("interval", "15s")), "spec.interval"),
        idle_for=parse_duration(str(spec.get("idleFor", "10m")), "spec.idleFor"),
        grace_period=parse_duration(str(spec.get("gracePeriod", "15m")), "spec.gracePeriod"),
        signals=signals,
        wake=wake,
        metrics_loss_action=MetricsLossAction(loss.get("action", "Restore")),
        metrics_loss_after=parse_duration(str(loss.get("after", "5m")), "spec.onMetricsLoss.after"),
        dry_run=bool(spec.get("dryRun", False)),
        prometheus_url=(spec.get("prometheus") or {}).get("url"),
    )
    if policy.idle_for < policy.interval:
        raise PolicyError("spec.idleFor must be at least spec.interval")
    return policy


def selector_matches(policy: Policy, labels: dict[str, str]) -> bool:
    """matchLabels and matchExpressions (In, NotIn, Exists, DoesNotExist)."""
    if any(labels.get(key) != value for key, value in policy.selector.items()):
        return False
    for expression in policy.selector_expressions:
        key, operator = expression.get("key", ""), expression.get("operator", "")
        values = set(expression.get("values") or ())
        present = key in labels
        if operator == "In" and not (present and labels[key] in values):
            return False
        if operator == "NotIn" and present and labels[key] in values:
            return False
        if operator == "Exists" and not present:
            return False
        if operator == "DoesNotExist" and present:
            return False
    return True
