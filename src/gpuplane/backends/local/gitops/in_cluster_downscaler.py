"""The downscaler delivered by Argo CD, running for real on a kubelet node.

On a real cluster the operator's pod runs on the infra node and reaches the API server
and Prometheus through Services. Here the infra node is KWOK (a host runs one kubelet
node: the app or the gpu node), the API server and Prometheus listen on loopback, and no
kube-proxy serves a Service. So where a kubelet node exists, ``gitops up`` gives the
downscaler's Application values that put its pod on that node (its role bent, and said
so by ``status``), from the offline image, talking to the host's loopback listeners
through the pod gateway (``pod_gateway``) on the pod bridge, and stops the host-process
operator: one operator, never two. Without a kubelet node nothing changes: the chart's
pod is simulated on KWOK, the host process acts.

The values are pure (from the node and the gateway's ports); the pod's state is read.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from lightkube import Client, KubeConfig
from lightkube.resources.core_v1 import Pod

from gpuplane.backends.base import ComponentStatus
from gpuplane.backends.local.kubelet.layout import POD_SUBNET
from gpuplane.toolchain.images import DOWNSCALER_NAME

NAMESPACE = "gpuplane-system"
# charts/downscaler's Deployment (its release name) and its pods' label.
DEPLOYMENT = "gpuplane-downscaler"
SELECTOR: dict[str, Any] = {"app.kubernetes.io/name": DEPLOYMENT}
# The chart's metrics port (charts/downscaler/values.yaml): scraped by the host's
# Prometheus through its discovery of the kubelet nodes' pods.
METRICS_PORT = 8081


# kopf's service-account login connects to https://kubernetes.default.svc, port 443
# whatever KUBERNETES_SERVICE_PORT says: the gateway serves the API server there (on the
# bridge's address only, so no other listener of the host is in the way).
IN_CLUSTER_API_PORT = 443


def gateway_address() -> str:
    """The host side of the pod network: the bridge's address, the subnet's first."""
    return str(next(ipaddress.IPv4Network(POD_SUBNET).hosts()))


@dataclass(frozen=True)
class GatewayPorts:
    """The pod gateway's ports on the bridge: the API server's and Prometheus' relays."""

    api_server: int
    prometheus: int


def api_server_port(kubeconfig: Path) -> int:
    """The API server's loopback port, from the admin kubeconfig."""
    context = KubeConfig.from_file(str(kubeconfig)).get()
    server = context.cluster.server if context is not None else ""
    return urlsplit(server).port or 443


def tolerations_for(taints: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Tolerate exactly ``node``'s taints (and nothing else)."""
    tolerations = []
    for taint in taints:
        toleration = {"key": taint["key"], "effect": taint["effect"]}
        if taint.get("value") is None:
            toleration["operator"] = "Exists"
        else:
            toleration.update(operator="Equal", value=taint["value"])
        tolerations.append(toleration)
    return tolerations


def downscaler_values(
    node: str, taints: list[dict[str, Any]], gateway: str, ports: GatewayPorts
) -> dict[str, Any]:
    """charts/downscaler values for its pod on kubelet node ``node``."""
    repository, _, _tag = DOWNSCALER_NAME.rpartition(":")
    return {
        "image": {"repository": repository},
        "nodeSelector": {"kubernetes.io/hostname": node},
        "tolerations": tolerations_for(taints),
        "apiServer": {"address": gateway, "port": ports.api_server},
        "prometheusUrl": f"http://{gateway}:{ports.prometheus}",
        "podAnnotations": {
            "prometheus.io/scrape": "true",
            "prometheus.io/port": str(METRICS_PORT),
        },
    }


def operator_status(client: Client | None, node: str) -> ComponentStatus:
    """The operator's pod as ``status`` lists it: running when a pod of it is Ready on
    the kubelet node."""
    where = f"in the cluster: pod of charts/downscaler (Argo CD) on kubelet node {node}"
    if client is None:
        return ComponentStatus("downscaler", False, f"{where}; the cluster is not reachable")
    for pod in client.list(Pod, namespace=NAMESPACE, labels=SELECTOR):
        conditions = (pod.status.conditions if pod.status else None) or []
        ready = any(c.type == "Ready" and c.status == "True" for c in conditions)
        if ready and pod.spec is not None and pod.spec.nodeName == node:
            name = pod.metadata.name if pod.metadata else "?"
            return ComponentStatus("downscaler", True, f"{where} ({name}, Ready)")
    return ComponentStatus("downscaler", False, f"{where}; no Ready pod there")
