"""The embeddings service's Prometheus series: the ones every model service has
(gpuplane.shared.service_metrics, prefix ``inference_``) and its batching's own."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

from gpuplane.shared.service_metrics import ServiceSeries

LATENCY_BUCKETS = (0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512)


class ServiceMetrics(ServiceSeries):
    def __init__(self, namespace: str, deployment: str) -> None:
        super().__init__(
            "inference", namespace, deployment, latency_buckets=LATENCY_BUCKETS,
            device_labels=("device", "device_name"),
        )  # fmt: skip
        r, owner = self.registry, self.owner
        labels = list(owner)
        self.batch_size = Histogram(
            "inference_batch_size", "Texts per model call.", labels, buckets=BATCH_BUCKETS,
            registry=r,
        ).labels(**owner)  # fmt: skip
        self.batch_seconds = Histogram(
            "inference_batch_duration_seconds", "Model time per batch.", labels,
            buckets=LATENCY_BUCKETS, registry=r,
        ).labels(**owner)  # fmt: skip
        self.tokens = Counter("inference_tokens", "Tokens embedded.", labels, registry=r).labels(
            **owner
        )
        self.queued = Gauge(
            "inference_queue_texts", "Texts waiting for a batch.", labels, registry=r
        ).labels(**owner)
