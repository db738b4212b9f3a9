"""Wake latency: from a wake restore to every replica of the Deployment ready.

The evaluator starts the clock just before it restores; the Deployment watch stops it at
the first event showing every replica ready, so the resolution is the watch's, not the
policy interval's. Pure bookkeeping: the caller passes the monotonic time.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from gpuplane.downscaler.snapshot import DeploymentSnapshot


@dataclass
class WakeTracker:
    # (namespace, name) -> (monotonic time of the restore, replicas restored)
    waking: dict[tuple[str, str], tuple[float, int]] = field(default_factory=dict)

    def started(self, namespace: str, name: str, replicas: int, now: float) -> None:
        self.waking[(namespace, name)] = (now, replicas)

    def seen(self, deployment: DeploymentSnapshot, now: float) -> float | None:
        """Seconds since the restore once every replica is ready, else None.

        A Deployment scaled to zero again before it was ready is forgotten.
        """
        key = (deployment.namespace, deployment.name)
        if key not in self.waking:
            return None
        since, replicas = self.waking[key]
        if deployment.replicas == 0:
            del self.waking[key]
            return None
        if deployment.ready_replicas < replicas:
            return None
        del self.waking[key]
        return now - since

    def pending(self, namespace: str, name: str) -> bool:
        return (namespace, name) in self.waking

    def forget(self, namespace: str, name: str) -> None:
        """The Deployment is gone before it was ready."""
        self.waking.pop((namespace, name), None)
