"""The demo story on the local backend, step by step, with what each step proves.

A GPU inference Deployment serves traffic; traffic stops; the downscaler scales it to
zero; a pending GPU training Job takes the freed GPU; traffic returns; the inference is
restored once the GPU is free again.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from lightkube import Client
from lightkube.core.exceptions import ApiError
from lightkube.resources.apps_v1 import Deployment
from lightkube.resources.batch_v1 import Job
from lightkube.resources.core_v1 import Namespace, Pod
from lightkube.types import CascadeType

from gpuplane.errors import OperationError
from gpuplane.kube.apply import apply_files
from gpuplane.simulation.traffic_client import TrafficClient

NAMESPACE, INFERENCE, TRAINING = "ml", "llm-inference", "gpu-training"


@dataclass(frozen=True)
class Step:
    seconds: float
    text: str


def _replicas(client: Client) -> int:
    spec = client.get(Deployment, INFERENCE, namespace=NAMESPACE).spec
    return int(spec.replicas or 0) if spec else 0


def _ready(client: Client) -> int:
    status = client.get(Deployment, INFERENCE, namespace=NAMESPACE).status
    return int(status.readyReplicas or 0) if status else 0


def _training_phase(client: Client) -> str:
    pods = list(client.list(Pod, namespace=NAMESPACE, labels={"app.kubernetes.io/name": TRAINING}))
    if not pods or pods[0].status is None:
        return "none"
    node = pods[0].spec.nodeName if pods[0].spec else None
    return f"{pods[0].status.phase} on {node}" if node else str(pods[0].status.phase)


def _job_exists(client: Client) -> bool:
    try:
        client.get(Job, TRAINING, namespace=NAMESPACE)
    except ApiError:
        return False
    return True


def _terminating(client: Client) -> bool:
    try:
        namespace = client.get(Namespace, NAMESPACE)
    except ApiError as error:
        if error.status.code == 404:
            return False
        raise
    return namespace.status is not None and namespace.status.phase == "Terminating"


def wait(what: str, condition: Callable[[], bool], timeout: float = 120.0) -> None:
    """Poll ``condition`` until true; OperationError naming ``what`` after ``timeout``."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise OperationError(f"demo: {what} did not happen within {timeout:.0f}s")
        time.sleep(0.5)


class Observed(Protocol):
    """What Prometheus has scraped: the story ends once the dashboards can show it all."""

    def wake_totals(self) -> tuple[float, float]:
        """(count, sum) of the operator's wake-latency histogram."""

    def gpu_holder_seen(self, namespace: str, deployment: str) -> bool:
        """A pod of the Deployment appears on a GPU's utilisation series."""


def run_story(
    client: Client,
    traffic: TrafficClient,
    apps: Path,
    say: Callable[[Step], None],
    observed: Observed,
) -> list[Step]:
    steps: list[Step] = []
    start = time.monotonic()
    before = observed.wake_totals()

    def note(text: str) -> None:
        step = Step(time.monotonic() - start, text)
        steps.append(step)
        say(step)

    # A namespace being deleted refuses new objects: let an earlier deletion finish.
    wait("the namespace ml being deleted to go", lambda: not _terminating(client))
    # A job left by an earlier run would hold the GPU: remove it and its pods first.
    with contextlib.suppress(ApiError):
        client.delete(Job, TRAINING, namespace=NAMESPACE, cascade=CascadeType.FOREGROUND)
    wait(
        "the earlier training job to go",
        lambda: _training_phase(client) == "none" and not _job_exists(client),
    )
    apply_files(client, [apps / "namespace.yaml", apps / "inference.yaml"])
    traffic.set_rate(NAMESPACE, INFERENCE, 5.0)
    apply_files(client, [apps / "policy.yaml"])
    wait("the inference to be ready", lambda: _ready(client) >= 1)
    note(f"{INFERENCE} serves 5 requests/s on the gpu node, holding its only GPU")
    traffic.set_rate(NAMESPACE, INFERENCE, 0.0)
    note("traffic stops")
    apply_files(client, [apps / "training-job.yaml"])
    wait("the training pod", lambda: _training_phase(client) == "Pending")
    note(f"{TRAINING} submitted: Pending, the only GPU is taken")
    wait("the scale-down", lambda: _replicas(client) == 0, timeout=180)
    note(f"downscaler: {INFERENCE} idle for idleFor -> scaled to 0 (original count in the ledger)")
    wait("the training job to get the GPU", lambda: "on " in _training_phase(client))
    note(f"{TRAINING} got the freed GPU: {_training_phase(client)}")
    traffic.set_rate(NAMESPACE, INFERENCE, 5.0)
    note("traffic returns at the gateway")
    wait("the restore", lambda: _replicas(client) == 1)
    note(f"downscaler: wake query above threshold -> {INFERENCE} restored to 1 replica")
    wait("the inference to be ready again", lambda: _ready(client) >= 1)
    note(f"{INFERENCE} ready again on the gpu node")
    wait("the wake latency in Prometheus", lambda: observed.wake_totals()[0] > before[0], 60)
    wait(
        "the GPU metrics of the woken pod",
        lambda: observed.gpu_holder_seen(NAMESPACE, INFERENCE),
        timeout=60,
    )
    count, total = observed.wake_totals()
    latency = (total - before[1]) / (count - before[0])
    note(
        f"downscaler measured the wake: {latency:.1f}s from restore to every replica ready; "
        "every dashboard panel now has data"
    )
    return steps
