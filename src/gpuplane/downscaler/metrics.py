"""The operator's own Prometheus metrics (served on /metrics)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

# Label values known up front, so every series exists (at 0) from the first scrape and
# dashboards show a flat line instead of "no data".
VERDICTS = ("Active", "Idle", "Unknown")
RESTORE_CAUSES = ("wake", "request", "active", "metrics", "policy-deleted")


class OperatorMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        prefix = "gpuplane_downscaler"
        self.decisions = Counter(
            f"{prefix}_decisions_total", "Target evaluations by verdict", ["verdict"],
            registry=self.registry,
        )  # fmt: skip
        self.scale_downs = Counter(
            f"{prefix}_scale_downs_total", "Deployments scaled to zero", registry=self.registry
        )
        self.restores = Counter(
            f"{prefix}_restores_total", "Deployments restored, by cause", ["cause"],
            registry=self.registry,
        )  # fmt: skip
        self.query_errors = Counter(
            f"{prefix}_query_errors_total", "Failed Prometheus queries (errors and unreachable)",
            registry=self.registry,
        )  # fmt: skip
        self.queries = Counter(
            f"{prefix}_prometheus_queries_total", "Prometheus queries sent", registry=self.registry
        )
        self.evaluation = Histogram(
            f"{prefix}_evaluation_seconds", "Time of one policy evaluation cycle",
            registry=self.registry,
            buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
        )  # fmt: skip
        self.gpus_reclaimed = Gauge(
            f"{prefix}_gpus_reclaimed", "GPUs freed by ScaledDown targets, per policy",
            ["namespace", "policy"], registry=self.registry,
        )  # fmt: skip
        self.metrics_available = Gauge(
            f"{prefix}_metrics_available", "1 when every Prometheus query of the policy answered",
            ["namespace", "policy"], registry=self.registry,
        )  # fmt: skip
        self.wake_seconds = Histogram(
            f"{prefix}_wake_seconds",
            "From a wake restore to every replica of the Deployment ready (seen by the watch)",
            registry=self.registry,
            # Sim: a fraction of a second (KWOK pods); real GPUs: image pull and model load.
            buckets=(0.25, 0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300, 600),
        )
        self.scaled_down = Gauge(
            f"{prefix}_scaled_down_targets", "Targets currently ScaledDown, per policy",
            ["namespace", "policy"], registry=self.registry,
        )  # fmt: skip
        self.targets = Gauge(
            f"{prefix}_targets", "Targets of a policy by verdict in its last cycle",
            ["namespace", "policy", "verdict"], registry=self.registry,
        )  # fmt: skip
        self.actuation = Histogram(
            f"{prefix}_actuation_seconds",
            "From a cycle's decisions to its last Deployment write (cycles that act)",
            registry=self.registry,
            buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 4, 6, 10, 20, 60),
        )
        self.write_conflicts = Counter(
            f"{prefix}_write_conflicts_total",
            "Deployment writes refused for a stale resourceVersion (then re-read, re-decided)",
            registry=self.registry,
        )
        self.write_errors = Counter(
            f"{prefix}_write_errors_total", "Deployment writes that failed (retried next cycle)",
            registry=self.registry,
        )  # fmt: skip
        self.kube_requests = Counter(
            f"{prefix}_kube_requests_total", "Requests of the operator's API client, by verb",
            ["verb"], registry=self.registry,
        )  # fmt: skip
        self.kube_bytes = Counter(
            f"{prefix}_kube_bytes_total", "Bodies of the operator's API client, by direction",
            ["direction"], registry=self.registry,
        )  # fmt: skip
        for verdict in VERDICTS:
            self.decisions.labels(verdict)
        for cause in RESTORE_CAUSES:
            self.restores.labels(cause)
