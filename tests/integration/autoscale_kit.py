"""HPAs and load for the autoscaling tests (KWOK replicas in test_autoscale, real ones on
the kubelet node in test_kubelet_node)."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from typing import Any

import httpx2
from lightkube import Client
from lightkube.resources.apps_v1 import Deployment
from lightkube.resources.autoscaling_v2 import HorizontalPodAutoscaler

from tests.integration.inference_kit import MODEL


def hpa(
    namespace: str,
    *,
    target: str = "svc",
    metric: str = "inference_requests_in_flight",
    max_replicas: int = 4,
    scale_down_window: int = 0,
) -> Any:
    manifest = {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": target, "namespace": namespace},
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": target},
            "minReplicas": 1,
            "maxReplicas": max_replicas,
            "metrics": [
                {
                    "type": "Object",
                    "object": {
                        "describedObject": {
                            "apiVersion": "apps/v1",
                            "kind": "Deployment",
                            "name": target,
                        },
                        "metric": {"name": metric},
                        "target": {"type": "AverageValue", "averageValue": "2"},
                    },
                }
            ],
            "behavior": {
                "scaleUp": {"stabilizationWindowSeconds": 0},
                "scaleDown": {
                    "stabilizationWindowSeconds": scale_down_window,
                    "policies": [{"type": "Percent", "value": 100, "periodSeconds": 15}],
                },
            },
        },
    }
    return HorizontalPodAutoscaler.from_dict(manifest)


def hpa_condition(client: Client, namespace: str, kind: str, name: str = "svc") -> dict[str, str]:
    live = client.get(HorizontalPodAutoscaler, name, namespace=namespace)
    for condition in (live.status.conditions if live.status else None) or []:
        if condition.type == kind:
            return {
                "status": condition.status,
                "reason": condition.reason or "",
                "message": condition.message or "",
            }
    return {}


def ready_replicas(client: Client, namespace: str, name: str = "svc") -> int:
    live = client.get(Deployment, name, namespace=namespace)
    return int((live.status.readyReplicas if live.status else 0) or 0)


EMBEDDINGS = ("/v1/embeddings", {"model": MODEL, "input": ["the cluster scales out on demand"] * 4})


@contextlib.contextmanager
def load(
    url: str, clients: int, failures: list[int] | None = None,
    request: tuple[str, dict[str, Any]] = EMBEDDINGS,
) -> Iterator[None]:  # fmt: skip
    """``clients`` requests (``request``: path and body) in flight at all times until the
    block ends; the status of every answer other than 200 goes to ``failures`` (0: no
    answer)."""
    stop = threading.Event()

    def client() -> None:
        with httpx2.Client(timeout=120, trust_env=False) as http:
            while not stop.is_set():
                try:
                    answer = http.post(f"{url}{request[0]}", json=request[1])
                    status = answer.status_code
                except httpx2.HTTPError:
                    status = 0
                if status != 200:
                    if failures is not None:
                        failures.append(status)
                    stop.wait(0.1)  # no busy loop against a failing upstream

    threads = [threading.Thread(target=client, daemon=True) for _ in range(clients)]
    for thread in threads:
        thread.start()
    try:
        yield
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=120)
