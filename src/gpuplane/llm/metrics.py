"""The LLM service's Prometheus series: the ones every model service has
(gpuplane.shared.service_metrics, prefix ``llm_``) and what users of a streaming model
watch: time to first token, the gaps between tokens, tokens per second (the rate of the
completion-token counter), streams generating and waiting, clients that left."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

from gpuplane.shared.service_metrics import ServiceSeries

TTFT_BUCKETS = (0.005, 0.01, 0.02, 0.03, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
GAP_BUCKETS = (0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0)
REQUEST_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0)


class LlmMetrics(ServiceSeries):
    def __init__(self, namespace: str, deployment: str) -> None:
        super().__init__(
            "llm", namespace, deployment, latency_buckets=REQUEST_BUCKETS,
            device_labels=("device", "device_name", "engine"),
        )  # fmt: skip
        r, owner = self.registry, self.owner
        labels = list(owner)
        self.ttft = Histogram(
            "llm_time_to_first_token_seconds", "Arrival to the first token sent.", labels,
            buckets=TTFT_BUCKETS, registry=r,
        ).labels(**owner)  # fmt: skip
        self.gap = Histogram(
            "llm_inter_token_seconds", "Time between consecutive tokens of a stream.", labels,
            buckets=GAP_BUCKETS, registry=r,
        ).labels(**owner)  # fmt: skip
        self.prompt_tokens = Counter(
            "llm_prompt_tokens", "Prompt tokens read.", labels, registry=r
        ).labels(**owner)
        self.completion_tokens = Counter(
            "llm_completion_tokens", "Tokens generated.", labels, registry=r
        ).labels(**owner)
        self.active = Gauge(
            "llm_streams_active", "Requests being generated now.", labels, registry=r
        ).labels(**owner)
        self.waiting = Gauge(
            "llm_streams_waiting", "Requests waiting for a generation slot.", labels, registry=r
        ).labels(**owner)
        self.disconnects = Counter(
            "llm_client_disconnects", "Streams whose client went away before the end.",
            labels, registry=r,
        ).labels(**owner)  # fmt: skip
