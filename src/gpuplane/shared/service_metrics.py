"""The series every model service exports, under its own prefix (``inference_``,
``llm_``): API requests and their duration (``http_requests_total`` is what the
downscaler's request-rate signal sums by deployment; it counts the API only, never probes
or scrapes), refusals by reason, readiness, the device, and the cold start by phase."""

from __future__ import annotations

from collections.abc import Sequence

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from gpuplane.shared.cold_start import Startup

REJECTIONS = ("queue_full", "not_ready")


class ServiceSeries:
    def __init__(
        self, prefix: str, namespace: str, deployment: str, *, latency_buckets: Sequence[float],
        device_labels: Sequence[str],
    ) -> None:  # fmt: skip
        self.registry = r = CollectorRegistry(auto_describe=True)
        self.owner = owner = {"namespace": namespace, "deployment": deployment}
        labels = list(owner)
        self.api_requests = Counter(
            "http_requests", "API requests answered, by path and status code.",
            [*labels, "method", "path", "code"], registry=r,
        )  # fmt: skip
        self.latency = Histogram(
            "http_request_duration_seconds", "A request's arrival to its answer's end, by path.",
            [*labels, "path"], buckets=latency_buckets, registry=r,
        )  # fmt: skip
        self.rejected = Counter(
            f"{prefix}_rejected", "Requests refused with 503, by reason.", [*labels, "reason"],
            registry=r,
        )  # fmt: skip
        # Every reason exists from the start at 0: "no rejections" is a rate of 0, not an
        # absent series (a dashboard panel or alert on it then has data).
        for reason in REJECTIONS:
            self.rejected.labels(**owner, reason=reason)
        # What the HPA scales on (through the Prometheus adapter; one rule for every service):
        # requests being answered now, summed over a Deployment's replicas, divided by them.
        self.in_flight = Gauge(
            "inference_requests_in_flight", "API requests received and not yet answered.",
            labels, registry=r,
        ).labels(**owner)  # fmt: skip
        self.ready = Gauge(
            f"{prefix}_ready", "1 once the model is on its device and warm.", labels, registry=r
        ).labels(**owner)
        self.device = Gauge(
            f"{prefix}_device_info", "The device the model runs on (value 1).",
            [*labels, *device_labels], registry=r,
        )  # fmt: skip
        self.phase = Gauge(
            f"{prefix}_startup_phase_seconds",
            "Cold start: seconds each phase took (imports .. ready).", [*labels, "phase"],
            registry=r,
        )  # fmt: skip
        self.startup = Gauge(
            f"{prefix}_startup_seconds", "Cold start: process start to ready.", labels,
            registry=r,
        ).labels(**owner)  # fmt: skip

    def request(self, method: str, path: str, code: int, seconds: float) -> None:
        self.api_requests.labels(**self.owner, method=method, path=path, code=str(code)).inc()
        self.latency.labels(**self.owner, path=path).observe(seconds)

    def reject(self, reason: str) -> None:
        self.rejected.labels(**self.owner, reason=reason).inc()

    def on_device(self, **labels: str) -> None:
        self.device.labels(**self.owner, **labels).set(1)

    def started(self, startup: Startup) -> None:
        for phase, seconds in startup.durations().items():
            self.phase.labels(**self.owner, phase=phase).set(seconds)
        total = startup.total()
        if total is not None:
            self.startup.set(total)
