"""The traffic simulator's bookkeeping (pure, fake-time testable).

Per Deployment a request rate; counters grow by rate x elapsed time. The app's own
``http_requests_total`` only exists (and only grows) while the Deployment has ready
replicas, as real pods would report it; ``gateway_requests_total`` always does, as an
ingress would.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

Key = tuple[str, str]  # (namespace, deployment)


def rate_problem(rps: float) -> str | None:
    """Why ``rps`` is no request rate: NaN and infinity would poison every counter (and the
    rates file they are persisted in), a negative rate means nothing."""
    if not math.isfinite(rps):
        return f"rate must be a finite number (got {rps})"
    if rps < 0:
        return f"rate must not be negative (got {rps})"
    return None


def label_value(text: str) -> str:
    """A label value as the exposition format writes it: a quote or a newline in a name
    would otherwise end the value and corrupt every line after it."""
    return text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _labels(namespace: str, name: str) -> str:
    return f'namespace="{label_value(namespace)}",deployment="{label_value(name)}"'


@dataclass
class Flow:
    rps: float = 0.0
    app_requests: float = 0.0
    gateway_requests: float = 0.0


@dataclass
class TrafficBook:
    flows: dict[Key, Flow] = field(default_factory=dict)
    ready: dict[Key, bool] = field(default_factory=dict)
    last_update: float | None = None

    def advance(self, now: float) -> None:
        if self.last_update is not None and now > self.last_update:
            elapsed = now - self.last_update
            for key, flow in self.flows.items():
                flow.gateway_requests += flow.rps * elapsed
                if self.ready.get(key, False):
                    flow.app_requests += flow.rps * elapsed
        self.last_update = now

    def set_rate(self, key: Key, rps: float, now: float) -> None:
        problem = rate_problem(rps)
        if problem is not None:
            raise ValueError(problem)
        self.advance(now)
        self.flows.setdefault(key, Flow()).rps = rps

    def set_ready(self, key: Key, ready: bool, now: float) -> None:
        self.advance(now)
        was_ready = self.ready.get(key, False)
        self.ready[key] = ready
        if ready and not was_ready and key in self.flows:
            # New pods start their counters from zero (Prometheus' rate() handles resets).
            self.flows[key].app_requests = 0.0

    def exposition(self, now: float) -> str:
        """Prometheus text format of both counters."""
        self.advance(now)
        lines = [
            "# HELP http_requests_total Requests served by the app's pods (simulated).",
            "# TYPE http_requests_total counter",
        ]
        for (namespace, name), flow in sorted(self.flows.items()):
            if self.ready.get((namespace, name), False):
                labels = _labels(namespace, name)
                lines.append(f"http_requests_total{{{labels}}} {flow.app_requests:.3f}")
        lines += [
            "# HELP gateway_requests_total Requests seen by the gateway for the app (simulated).",
            "# TYPE gateway_requests_total counter",
        ]
        for (namespace, name), flow in sorted(self.flows.items()):
            labels = _labels(namespace, name)
            lines.append(f"gateway_requests_total{{{labels}}} {flow.gateway_requests:.3f}")
        return "\n".join(lines) + "\n"

    def table(self) -> list[dict[str, object]]:
        return [
            {
                "namespace": ns,
                "deployment": name,
                "rps": flow.rps,
                "ready": self.ready.get((ns, name), False),
            }
            for (ns, name), flow in sorted(self.flows.items())
        ]
