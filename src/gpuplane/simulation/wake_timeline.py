"""Where a wake from zero spends its time, as seen from outside: a poller records when each
step of the wake was first observed (the Deployment restored, its pod created, scheduled,
its container running, the pod Ready), in seconds from the moment the request was sent.
Kubernetes' own timestamps have whole-second resolution, too coarse for a wake of a few
seconds, so the steps are timed by polling the API server every ``interval`` seconds: each
figure is late by at most one interval plus one API round trip."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any

from lightkube import Client
from lightkube.resources.apps_v1 import Deployment
from lightkube.resources.core_v1 import Pod

STEPS = ("restored", "pod_created", "scheduled", "container_running", "ready")


@dataclass
class WakeTimeline:
    client: Client
    namespace: str
    deployment: str
    labels: dict[str, Any]
    interval: float = 0.02
    seen: dict[str, float] = field(default_factory=dict)
    _started: float = 0.0
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> None:
        """Call right before the request is sent: every step counts from here."""
        self._started = time.monotonic()
        self._thread = threading.Thread(target=self._poll, daemon=True)
        self._thread.start()

    def stop(self, settle: float = 10.0) -> dict[str, float]:
        """The steps seen, once Kubernetes has said Ready or ``settle`` seconds passed: the
        activator may find the pod ready by its own probe and answer before Kubernetes
        does, so the answer's end is not the timeline's."""
        if self._thread is not None:
            self._thread.join(timeout=settle)  # the poller ends by itself at "ready"
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        return dict(self.seen)

    def _see(self, step: str) -> None:
        self.seen.setdefault(step, round(time.monotonic() - self._started, 3))

    def _poll(self) -> None:
        while not self._stop.is_set() and "ready" not in self.seen:
            live = self.client.get(Deployment, self.deployment, namespace=self.namespace)
            if live.spec is not None and (live.spec.replicas or 0) >= 1:
                self._see("restored")
            for pod in self.client.list(Pod, namespace=self.namespace, labels=self.labels):
                self._observe(pod)
            time.sleep(self.interval)

    def _observe(self, pod: Pod) -> None:
        self._see("pod_created")
        if pod.spec is not None and pod.spec.nodeName:
            self._see("scheduled")
        status = pod.status
        if status is None:
            return
        if any(c.state is not None and c.state.running for c in status.containerStatuses or []):
            self._see("container_running")
        if any(c.type == "Ready" and c.status == "True" for c in status.conditions or []):
            self._see("ready")


def service_phases(log: str) -> str:
    """The service's own start-up line ("ready on ...: imports=... total ..."), if logged."""
    lines = [line for line in log.splitlines() if " ready on " in line and "total" in line]
    return lines[-1].split(" ready on ", 1)[1] if lines else "not logged"
