"""The service's Prometheus series.

``http_requests_total{namespace,deployment,method,path,code}`` is what the downscaler's
request-rate signal sums ``by (deployment)``; it counts the API only (``/v1/...``), never
probes or scrapes, or a kubelet's readiness probe would keep an idle service "active"."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from gpuplane.inference.startup import Startup

LATENCY_BUCKETS = (0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512)


class ServiceMetrics:
    def __init__(self, namespace: str, deployment: str) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        owner = {"namespace": namespace, "deployment": deployment}
        r = self.registry
        self._owner = owner
        self.api_requests = Counter(
            "http_requests",
            "API requests answered, by path and status code.",
            ["namespace", "deployment", "method", "path", "code"],
            registry=r,
        )
        self.latency = Histogram(
            "http_request_duration_seconds",
            "Time from a request's arrival to its response, by path.",
            ["namespace", "deployment", "path"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.batch_size = Histogram(
            "inference_batch_size",
            "Texts per model call.",
            list(owner),
            buckets=BATCH_BUCKETS,
            registry=r,
        ).labels(**owner)
        self.batch_seconds = Histogram(
            "inference_batch_duration_seconds", "Model time per batch.", list(owner),
            buckets=LATENCY_BUCKETS, registry=r,
        ).labels(**owner)  # fmt: skip
        self.tokens = Counter(
            "inference_tokens", "Tokens embedded.", list(owner), registry=r
        ).labels(**owner)
        self.rejected = Counter(
            "inference_rejected",
            "Requests refused with 503, by reason.",
            [*owner, "reason"],
            registry=r,
        )
        # Every reason exists from the start at 0: "no rejections" is a rate of 0, not an
        # absent series (a dashboard panel or alert on it then has data).
        for reason in ("queue_full", "not_ready"):
            self.rejected.labels(**owner, reason=reason)
        # What the HPA scales on (through the Prometheus adapter): requests being answered
        # now, summed over a Deployment's replicas and divided by their count.
        self.in_flight = Gauge(
            "inference_requests_in_flight",
            "API requests received and not yet answered.",
            list(owner),
            registry=r,
        ).labels(**owner)
        self.queued = Gauge(
            "inference_queue_texts", "Texts waiting for a batch.", list(owner), registry=r
        ).labels(**owner)
        self.ready = Gauge(
            "inference_ready", "1 once weights are on the device and warm.", list(owner), registry=r
        ).labels(**owner)
        self.device = Gauge(
            "inference_device_info",
            "The device the model runs on (value 1).",
            [*owner, "device", "device_name"],
            registry=r,
        )
        self.phase = Gauge(
            "inference_startup_phase_seconds",
            "Cold start: seconds each phase took (imports .. ready).",
            [*owner, "phase"],
            registry=r,
        )
        self.startup = Gauge(
            "inference_startup_seconds",
            "Cold start: process start to ready.",
            list(owner),
            registry=r,
        ).labels(**owner)

    def request(self, method: str, path: str, code: int, seconds: float) -> None:
        self.api_requests.labels(**self._owner, method=method, path=path, code=str(code)).inc()
        self.latency.labels(**self._owner, path=path).observe(seconds)

    def reject(self, reason: str) -> None:
        self.rejected.labels(**self._owner, reason=reason).inc()

    def on_device(self, device: str, name: str) -> None:
        self.device.labels(**self._owner, device=device, device_name=name).set(1)

    def started(self, startup: Startup) -> None:
        for phase, seconds in startup.durations().items():
            self.phase.labels(**self._owner, phase=phase).set(seconds)
        total = startup.total()
        if total is not None:
            self.startup.set(total)
