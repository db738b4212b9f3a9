"""The activator's series. ``gpuplane_activator_requests_total`` is what a DownscalePolicy's
request signal and wake query read (it counts requests whatever the backend's state); the
hold-time histogram is the cold-start SLI: arrival to first response byte of requests
that waited for a scale from zero."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

HOLD_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 30, 60, 120, 300, 600)
OWNER = ("namespace", "deployment")


class ActivatorMetrics:
    def __init__(self) -> None:
        self.registry = r = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "gpuplane_activator_requests", "Requests answered, by backend and status code.",
            [*OWNER, "code"], registry=r,
        )  # fmt: skip
        self.held = Gauge(
            "gpuplane_activator_held_requests", "Requests held: the backend has no ready endpoint.",
            OWNER, registry=r,
        )  # fmt: skip
        self.hold_seconds = Histogram(
            "gpuplane_activator_hold_seconds",
            "Held requests: arrival to the backend's first response (scale-from-zero cold start).",
            OWNER, buckets=HOLD_BUCKETS, registry=r,
        )  # fmt: skip
        self.lost = Counter(
            "gpuplane_activator_lost_requests",
            "Requests not served: timeout (max hold), rejected (max held), upstream_error.",
            [*OWNER, "reason"], registry=r,
        )  # fmt: skip
        self.wake_requests = Counter(
            "gpuplane_activator_wake_requests", "Wake requests written (annotations).",
            [*OWNER, "result"], registry=r,
        )  # fmt: skip
        self.probed_ready = Counter(
            "gpuplane_activator_probed_ready",
            "Starting endpoints found ready by the activator's own probe before Kubernetes "
            "listed them as ready.",
            OWNER, registry=r,
        )  # fmt: skip
        self.ready_endpoints = Gauge(
            "gpuplane_activator_ready_endpoints", "Ready endpoints of the backend's Service.",
            OWNER, registry=r,
        )  # fmt: skip
