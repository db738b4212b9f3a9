"""The DownscalePolicy spec as typed data (the CRD's schema already rejects bad input;
this parse is defensive and names the field when something still slips through)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import timedelta
from enum import StrEnum
from typing import Any
from urllib.parse import urlsplit

from gpuplane.shared import durations
from gpuplane.shared.quoting import quoted

DEFAULT_TARGET_LABEL = "deployment"
SELECTOR_OPERATORS = ("In", "NotIn", "Exists", "DoesNotExist")


class PolicyError(ValueError):
    """A policy the operator cannot use; the message names the field."""


def parse_duration(text: str, where: str) -> timedelta:
    try:
        return durations.parse_duration(text)
    except ValueError as error:
        raise PolicyError(f"{where}: {error}") from None


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


def _number(value: object, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise PolicyError(f"{where}: {quoted(value)} is not a number")
    try:
        number = float(value)
    except ValueError:
        raise PolicyError(f"{where}: {quoted(value)} is not a number") from None
    if not math.isfinite(number):
        raise PolicyError(f"{where}: {quoted(value)} is not a finite number")
    return number


def _mapping(value: object, where: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise PolicyError(f"{where}: {quoted(value)} is not a mapping")
    return value


def _text(value: object, where: str) -> str:
    if not isinstance(value, str) or not value:
        raise PolicyError(f"{where}: {quoted(value)} is not a non-empty string")
    return value


def _signal(item: object, where: str) -> Signal:
    spec = _mapping(item, where)
    return Signal(
        name=_text(spec.get("name"), f"{where}.name"),
        query=_text(spec.get("query"), f"{where}.query"),
        idle_below=_number(spec.get("idleBelow"), f"{where}.idleBelow"),
        target_label=_text(spec.get("targetLabel") or DEFAULT_TARGET_LABEL, f"{where}.targetLabel"),
    )


def _expression(item: object, where: str) -> dict[str, Any]:
    spec = _mapping(item, where)
    operator = spec.get("operator")
    if operator not in SELECTOR_OPERATORS:
        raise PolicyError(
            f"{where}.operator: {quoted(operator)} is not one of {', '.join(SELECTOR_OPERATORS)}"
        )
    values = spec.get("values") or []
    if not isinstance(values, list) or not all(isinstance(value, str) for value in values):
        raise PolicyError(f"{where}.values: {quoted(values)} is not a list of strings")
    return {"key": _text(spec.get("key"), f"{where}.key"), "operator": operator, "values": values}


def dry_run_of(spec: dict[str, Any]) -> bool:
    """``spec.dryRun``, read one way everywhere: only a true boolean (the CRD's type) makes a
    policy dry; anything else acts. The finalizer reads a spec that may no longer parse."""
    return spec.get("dryRun", False) is True


def parse_policy(spec: dict[str, Any]) -> Policy:
    """The spec as typed data; PolicyError naming the field (value quoted, bounded)."""
    selector = _mapping(spec.get("selector"), "spec.selector")
    raw_signals = spec.get("signals") or []
    if not isinstance(raw_signals, list):
        raise PolicyError(f"spec.signals: {quoted(raw_signals)} is not a list")
    signals = tuple(
        _signal(item, f"spec.signals[{index}]") for index, item in enumerate(raw_signals)
    )
    if not signals:
        raise PolicyError("spec.signals: at least one signal is required")
    wake_spec = _mapping(spec.get("wake"), "spec.wake")
    wake = (
        Wake(
            query=_text(wake_spec.get("query"), "spec.wake.query"),
            above=_number(wake_spec.get("above", 0), "spec.wake.above"),
            target_label=_text(
                wake_spec.get("targetLabel") or DEFAULT_TARGET_LABEL, "spec.wake.targetLabel"
            ),
        )
        if wake_spec
        else None
    )
    loss = _mapping(spec.get("onMetricsLoss"), "spec.onMetricsLoss")
    action = loss.get("action", "Restore")
    if action not in [item.value for item in MetricsLossAction]:  # a list: action may be any type
        raise PolicyError(f"spec.onMetricsLoss.action: {quoted(action)} is not Restore or Hold")
    labels = _mapping(selector.get("matchLabels"), "spec.selector.matchLabels")
    expressions = selector.get("matchExpressions") or []
    if not isinstance(expressions, list):
        raise PolicyError(f"spec.selector.matchExpressions: {quoted(expressions)} is not a list")
    expressions = [
        _expression(item, f"spec.selector.matchExpressions[{index}]")
        for index, item in enumerate(expressions)
    ]
    url = _mapping(spec.get("prometheus"), "spec.prometheus").get("url")
    policy = Policy(
        selector={str(key): str(value) for key, value in labels.items()},
        selector_expressions=tuple(expressions),
        interval=parse_duration(str(spec.get("interval", "15s")), "spec.interval"),
        idle_for=parse_duration(str(spec.get("idleFor", "10m")), "spec.idleFor"),
        grace_period=parse_duration(str(spec.get("gracePeriod", "15m")), "spec.gracePeriod"),
        signals=signals,
        wake=wake,
        metrics_loss_action=MetricsLossAction(action),
        metrics_loss_after=parse_duration(str(loss.get("after", "5m")), "spec.onMetricsLoss.after"),
        dry_run=dry_run_of(spec),
        prometheus_url=None if url is None else _text(url, "spec.prometheus.url"),
    )
    if policy.interval <= timedelta(0):
        raise PolicyError("spec.interval must be longer than 0s")
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


def prometheus_allowed(url: str, default: str, allowed: frozenset[str]) -> bool:
    """Whether a policy may name ``url``: the operator's own Prometheus, or one its flags
    allow. An allowed entry is ``scheme://host:port``, the port may be ``*`` (the local
    backend allows ``http://127.0.0.1:*``); the URL itself may carry no user, path beyond
    ``/``, query or fragment, so an allowed host cannot be stretched to another endpoint."""
    if url == default:
        return True
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return False
    if parts.username or parts.password or parts.query or parts.fragment:
        return False
    if parts.path not in ("", "/") or parts.hostname is None:
        return False
    for entry in allowed:
        scheme, _, rest = entry.partition("://")
        host, _, wanted_port = rest.rpartition(":")
        if scheme != parts.scheme or host.strip("[]") != parts.hostname:
            continue
        if wanted_port == "*" or (wanted_port.isdigit() and int(wanted_port) == port):
            return True
    return False
