"""Wake latency: from a wake restore to every replica of the Deployment ready.

The evaluator starts the clock when it restores; any sight of the Deployment afterwards
(a watch event, or the next evaluation) can stop it, so the resolution is the watch's,
not the policy interval's. Pure bookkeeping: the caller passes the monotonic time.
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

    def forget_missing(self, namespace: str, present: set[str]) -> None:
        """Drop the wakes of a namespace's Deployments that no longer exist."""
        for key in [k for k in self.waking if k[0] == namespace and k[1] not in present]:
            del self.waking[key]
