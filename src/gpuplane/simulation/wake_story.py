"""The demo's second act, where a real (kubelet) node exists: the real embeddings service
(``apps/inference``) runs there behind the activator instead of a KWOK placeholder. It
serves, goes idle, is scaled to zero, and requests that arrive at zero are held, wake it
at once and are all answered: the story prints how many were held, how many were lost
(0) and how long the wake took.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import httpx2
from lightkube import Client
from lightkube.resources.apps_v1 import Deployment
from lightkube.resources.core_v1 import Pod

from gpuplane.errors import OperationError
from gpuplane.kube.apply import apply_files, delete_files, read_documents
from gpuplane.metrics_text import sample_sum
from gpuplane.simulation.demo_story import wait
from gpuplane.topology import Platform

NAMESPACE = "ml"
SERVICE = "inference"
PORT = 8000
# Both services (embeddings and chat) answer 200 here once their model is warm.
READY_PATH = "/readyz"
ROUTE = "/ml/inference/"
HELD_REQUESTS = 20
WARM_REQUESTS = 10
MODEL = "all-MiniLM-L6-v2"
EMBEDDING_SIZE = 384
# A held request may wait for a whole cold start (image already on the node).
REQUEST_TIMEOUT = 300.0


@dataclass(frozen=True)
class Variant:
    """Which manifest of ``apps/inference`` runs on which real node."""

    node: str
    manifest: str
    deployment: str


def choose_variant(platform: Platform, inference: Path) -> Variant | None:
    """The GPU variant where the gpu node is real, else the CPU one where the app node is;
    ``None`` on an all-KWOK platform (the act is skipped). ``inference`` is
    ``apps/inference``: the Deployment's name is read from the manifest."""
    real = {node.role: node.name for node in platform.kubelet_nodes}
    for role, manifest in (("gpu", "server-gpu.yaml"), ("app", "server-cpu.yaml")):
        if role in real:
            (deployment,) = [
                document["metadata"]["name"]
                for document in read_documents([inference / manifest])
                if document.get("kind") == "Deployment"
            ]
            return Variant(real[role], manifest, str(deployment))
    return None


def activator_routes(
    variant: Variant, *, name: str, service: str, route: str
) -> list[dict[str, Any]]:
    """The activator's one backend: the variant's ready pods, called on their own
    addresses (the local backend runs no kube-proxy); a woken pod is probed at its
    ``/readyz`` by the activator itself, ahead of Kubernetes' readiness (docs/activator.md)."""
    return [
        {
            "name": name,
            "namespace": NAMESPACE,
            "deployment": variant.deployment,
            "service": service,
            "upstream": f"endpoints:{PORT}",
            "probePath": READY_PATH,
            "match": {"pathPrefix": route},
            "stripPrefix": True,
        }
    ]


def routes(variant: Variant) -> list[dict[str, Any]]:
    return activator_routes(variant, name="embeddings", service=SERVICE, route=ROUTE)


class ActivatorAddress(Protocol):
    @property
    def url(self) -> str: ...

    @property
    def metrics_url(self) -> str: ...


class ActivatorControl(Protocol):
    """Starts and stops the activator beside the cluster (the backend knows how)."""

    def start(self, backends: list[dict[str, Any]], limits: dict[str, float]) -> ActivatorAddress:
        """Run the activator for ``backends``; return once it has synced."""

    def stop(self) -> None: ...


@dataclass(frozen=True)
class Answer:
    code: int  # 0: no HTTP answer (connection error, timeout)
    seconds: float  # from sending to the whole answer
    embeddings: int  # embeddings of the right size in a 200 answer


@dataclass(frozen=True)
class WakeOutcome:
    held: int  # requests the activator held (its hold-time histogram)
    answered: int
    lost: int
    first_answer_seconds: float  # from the requests' arrival at zero
    last_answer_seconds: float
    replicas: int  # after the wake: the ledger's count


def replicas(client: Client, deployment: str) -> int:
    spec = client.get(Deployment, deployment, namespace=NAMESPACE).spec
    return int(spec.replicas or 0) if spec else 0


def ready_replicas(client: Client, deployment: str) -> int:
    status = client.get(Deployment, deployment, namespace=NAMESPACE).status
    return int(status.readyReplicas or 0) if status else 0


def pod_labels(client: Client, deployment: str) -> dict[str, Any]:
    """The Deployment's pod selector (read once, then every poll lists pods by it)."""
    live = client.get(Deployment, deployment, namespace=NAMESPACE)
    return dict((live.spec.selector.matchLabels if live.spec else None) or {})


def pods_left(client: Client, labels: dict[str, Any]) -> int:
    """Pods with ``labels``, terminating ones included (they still serve)."""
    return len(list(client.list(Pod, namespace=NAMESPACE, labels=labels)))


def _post(http: httpx2.Client, url: str, text: str) -> Answer:
    start = time.monotonic()
    try:
        answer = http.post(url, json={"model": MODEL, "input": [text]})
    except httpx2.HTTPError:
        return Answer(0, time.monotonic() - start, 0)
    seconds = time.monotonic() - start
    if answer.status_code != 200:
        return Answer(answer.status_code, seconds, 0)
    data = answer.json().get("data") or []
    right = sum(len(item.get("embedding") or []) == EMBEDDING_SIZE for item in data)
    return Answer(200, seconds, right)


def _answered(answers: list[Answer]) -> int:
    return sum(a.code == 200 and a.embeddings == 1 for a in answers)


def wait_scaled_to_zero(client: Client, deployment: str, note: Callable[[str], None]) -> None:
    """Until the downscaler has scaled ``deployment`` to zero and its last pod is gone."""
    wait("the scale-down", lambda: replicas(client, deployment) == 0, 180)
    # The last pod keeps serving while it leaves the endpoints (preStop), and requests it
    # answers are not held: the act waits until none is left.
    labels = pod_labels(client, deployment)
    wait("the last pod to go", lambda: pods_left(client, labels) == 0, 120)
    note(
        f"downscaler: idle on the activator's counter -> {deployment} scaled to 0 "
        "(its count in the ledger)"
    )


def held_total(metrics: str, deployment: str) -> float:
    """Requests the activator has held for ``deployment``, from its /metrics text."""
    labels = {"namespace": NAMESPACE, "deployment": deployment}
    return sample_sum(metrics, "gpuplane_activator_hold_seconds_count", **labels)


def run_wake_story(
    client: Client,
    apps: Path,
    variant: Variant,
    activator: ActivatorControl,
    note: Callable[[str], None],
) -> WakeOutcome:
    demo, inference = apps / "demo", apps / "inference"
    # The first act's policy selects every Deployment of the inference family, and its
    # placeholder holds the GPU: both go first.
    delete_files(
        client, [demo / "policy.yaml", demo / "training-job.yaml", demo / "inference.yaml"]
    )
    apply_files(client, [inference / "namespace.yaml", inference / variant.manifest])
    apply_files(client, [inference / "service.yaml"])
    note(
        f"{variant.deployment}: the real embeddings service (apps/inference) starts on "
        f"{variant.node}, a kubelet node"
    )
    wait("the service to be ready", lambda: ready_replicas(client, variant.deployment) >= 1, 300)
    address = activator.start(routes(variant), {"maxHeld": 100, "maxHoldSeconds": REQUEST_TIMEOUT})
    try:
        url = f"{address.url}{ROUTE}v1/embeddings"
        apply_files(client, [demo / "wake-policy.yaml"])
        with httpx2.Client(trust_env=False, timeout=REQUEST_TIMEOUT) as http:
            warm = [_post(http, url, f"request {i}") for i in range(WARM_REQUESTS)]
            if _answered(warm) != WARM_REQUESTS:
                raise OperationError(f"demo: the service answered {warm} through the activator")
            note(f"{WARM_REQUESTS} requests through the activator, all answered; then none")
            wait_scaled_to_zero(client, variant.deployment, note)
            metrics = f"{address.metrics_url}/metrics"
            before = held_total(http.get(metrics).text, variant.deployment)
            note(f"{HELD_REQUESTS} requests arrive at zero: the activator holds them, asks a wake")
            with ThreadPoolExecutor(HELD_REQUESTS) as pool:
                texts = [f"held request {i}" for i in range(HELD_REQUESTS)]
                answers = list(pool.map(lambda text: _post(http, url, text), texts))
            held = int(held_total(http.get(metrics).text, variant.deployment) - before)
        answered = _answered(answers)
        outcome = WakeOutcome(
            held=held,
            answered=answered,
            lost=HELD_REQUESTS - answered,
            first_answer_seconds=min(a.seconds for a in answers),
            last_answer_seconds=max(a.seconds for a in answers),
            replicas=replicas(client, variant.deployment),
        )
        note(
            f"wake: held {outcome.held}, answered {outcome.answered}, lost {outcome.lost}; "
            f"first answer after {outcome.first_answer_seconds:.1f}s, last after "
            f"{outcome.last_answer_seconds:.1f}s (restore + cold start); "
            f"{variant.deployment} back at {outcome.replicas} replica(s)"
        )
        if outcome.lost:
            codes = sorted({a.code for a in answers if a.code != 200})
            raise OperationError(f"demo: {outcome.lost} held request(s) lost (codes {codes})")
        return outcome
    finally:
        activator.stop()
        # Leave the namespace as the first act expects it on the next run.
        delete_files(client, [demo / "wake-policy.yaml", inference / variant.manifest])
