"""Helpers for the downscaler's integration tests: Deployments, policies, waits, and the
traffic simulator and Prometheus that `gpuplane up` started for the session cluster."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar, cast

import httpx2
from lightkube import Client
from lightkube.resources.apps_v1 import Deployment
from lightkube.resources.core_v1 import Event

from gpuplane.backends.local.services import Services
from gpuplane.backends.local.state import LocalState
from gpuplane.downscaler.resource import DownscalePolicy

T = TypeVar("T")
RATE_WINDOW = "6s"  # three 2s scrapes
GPU_PLACEMENT = {
    "nodeSelector": {"node-role.kubernetes.io/gpu": "true"},
    "tolerations": [
        {"key": "node-role.kubernetes.io/gpu", "operator": "Exists", "effect": "NoSchedule"}
    ],
}


def gpu_signal(namespace: str) -> dict[str, Any]:
    """GPU utilisation per Deployment: dcgm-exporter labels pods, so map pod -> Deployment."""
    series = f'DCGM_FI_DEV_GPU_UTIL{{namespace="{namespace}"}}'
    mapped = f'label_replace({series}, "deployment", "$1", "pod", "(.+)-[^-]+-[^-]+")'
    return {"name": "gpu", "query": f"avg by (deployment) ({mapped})", "idleBelow": 5}


def wait_for(what: str, probe: Callable[[], T | None], timeout: float = 60.0) -> T:
    deadline = time.monotonic() + timeout
    last: T | None = None
    while time.monotonic() < deadline:
        last = probe()
        if last:
            return last
        time.sleep(0.3)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what} (last: {last!r})")


def services(env: dict[str, str], cluster: str) -> Services:
    return Services(LocalState(Path(env["GPUPLANE_STATE"]), cluster))


def set_traffic(env: dict[str, str], cluster: str, namespace: str, name: str, rps: float) -> None:
    ports = services(env, cluster).ports()
    assert ports is not None
    with httpx2.Client(trust_env=False, timeout=5) as http:
        answer = http.put(
            f"{ports.traffic_url}/traffic/{namespace}/{name}", content=json.dumps({"rps": rps})
        )
        answer.raise_for_status()


def deployment(namespace: str, name: str, replicas: int, gpus: int = 0) -> Deployment:
    limits: dict[str, str] = {"memory": "64Mi"}
    if gpus:
        limits["nvidia.com/gpu"] = str(gpus)
    labels = {"app.kubernetes.io/name": name, "app.kubernetes.io/part-of": "inference"}
    manifest = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": namespace, "labels": labels},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app.kubernetes.io/name": name}},
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "containers": [
                        {
                            "name": "app",
                            "image": "registry.k8s.io/pause:3.10",
                            "resources": {"limits": limits},
                        }
                    ],
                    **(GPU_PLACEMENT if gpus else {}),
                },
            },
        },
    }
    return cast(Deployment, Deployment.from_dict(manifest))


def rate_query(metric: str, namespace: str) -> str:
    selector = f'{metric}{{namespace="{namespace}"}}'
    return f"sum by (deployment) (rate({selector}[{RATE_WINDOW}]))"


def policy(namespace: str, name: str = "idle", **overrides: Any) -> Any:
    spec: dict[str, Any] = {
        "selector": {"matchLabels": {"app.kubernetes.io/part-of": "inference"}},
        "interval": "1s",
        "idleFor": "4s",
        "gracePeriod": "1s",
        "signals": [
            {
                "name": "requests",
                "query": rate_query("http_requests_total", namespace),
                "idleBelow": 0.05,
            }
        ],
        "wake": {
            "query": rate_query("gateway_requests_total", namespace),
            "above": 0.05,
        },
        "onMetricsLoss": {"action": "Restore", "after": "6s"},
    }
    spec.update(overrides)
    spec = {key: value for key, value in spec.items() if value is not None}  # None: left out
    return DownscalePolicy.from_dict(
        {
            "apiVersion": "gpuplane.io/v1alpha1",
            "kind": "DownscalePolicy",
            "metadata": {"name": name, "namespace": namespace},
            "spec": spec,
        }
    )


def replicas(client: Client, namespace: str, name: str) -> int:
    live = client.get(Deployment, name, namespace=namespace)
    return int(live.spec.replicas if live.spec and live.spec.replicas is not None else 1)


def ledger(client: Client, namespace: str, name: str) -> str | None:
    live = client.get(Deployment, name, namespace=namespace)
    return ((live.metadata.annotations if live.metadata else None) or {}).get(
        "gpuplane.io/original-replicas"
    )


def policy_status(client: Client, namespace: str, name: str = "idle") -> dict[str, Any]:
    live = client.get(DownscalePolicy, name, namespace=namespace)
    return dict(live.to_dict().get("status") or {})


def target_status(
    client: Client, namespace: str, target: str, name: str = "idle"
) -> dict[str, Any]:
    for item in policy_status(client, namespace, name).get("targets") or []:
        if item.get("name") == target:
            return dict(item)
    return {}


def scaled_down(client: Client, ns: str, name: str) -> bool:
    """At zero, and the policy's status says so: the downscaler writes the replicas first
    and its status after, so a test that reads the status waits for both."""
    return (
        replicas(client, ns, name) == 0
        and target_status(client, ns, name).get("state") == "ScaledDown"
    )


def condition(client: Client, namespace: str, kind: str, name: str = "idle") -> dict[str, Any]:
    for item in policy_status(client, namespace, name).get("conditions") or []:
        if item.get("type") == kind:
            return dict(item)
    return {}


def events(client: Client, namespace: str, reason: str) -> list[tuple[str, str]]:
    found = client.list(Event, namespace=namespace, fields={"reason": reason})
    return [(event.involvedObject.kind or "", event.message or "") for event in found]
