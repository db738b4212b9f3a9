"""gpu-exporter where the local cluster's gpu node is real: the traffic simulator simulates
only KWOK nodes' GPUs, so on a kubelet gpu node the DCGM series that the dashboards and
the downscaler's GPU signal read come from NVML through ``apps/gpu-exporter`` (the
DaemonSet as it is, its image built here and imported into the node). Prometheus scrapes
each exporter pod on its own address, as it scrapes the other real workloads; ``down``
removes the target with the services' state."""

from __future__ import annotations

import time
from typing import Any

from lightkube import Client
from lightkube.resources.core_v1 import Pod

from gpuplane.backends.local.services import Services
from gpuplane.backends.local.state import LocalState
from gpuplane.errors import OperationError
from gpuplane.kube.apply import apply_documents, read_documents
from gpuplane.toolchain import repo_root

EXPORTER_MANIFEST = "apps/gpu-exporter/daemonset.yaml"
TARGET_PREFIX = "gpu-exporter"


def _daemonset(documents: list[dict[str, Any]]) -> dict[str, Any]:
    (daemonset,) = [document for document in documents if document.get("kind") == "DaemonSet"]
    return daemonset


def metrics_port(daemonset: dict[str, Any]) -> int:
    """The exporter container's first port: where its /metrics is."""
    container = daemonset["spec"]["template"]["spec"]["containers"][0]
    return int(container["ports"][0]["containerPort"])


def _ready(pod: Pod) -> bool:
    conditions = (pod.status.conditions if pod.status else None) or []
    return any(c.type == "Ready" and c.status == "True" for c in conditions)


def start_gpu_exporter(
    state: LocalState, client: Client, gpu_nodes: list[str], *, timeout: float = 180.0
) -> list[str]:
    """Apply the exporter, wait until it is Ready on every node of ``gpu_nodes``, and have
    Prometheus scrape each pod; return the scrape addresses."""
    documents = read_documents([repo_root() / EXPORTER_MANIFEST])
    daemonset = _daemonset(documents)
    namespace = daemonset["metadata"]["namespace"]
    labels = daemonset["spec"]["selector"]["matchLabels"]
    apply_documents(client, documents)
    deadline = time.monotonic() + timeout
    while True:
        pods = list(client.list(Pod, namespace=namespace, labels=labels))
        ready = {
            pod.spec.nodeName: pod
            for pod in pods
            if pod.spec is not None and pod.spec.nodeName in gpu_nodes and _ready(pod)
        }
        if set(ready) == set(gpu_nodes):
            break
        if time.monotonic() > deadline:
            raise OperationError(
                f"gpu-exporter is not Ready on {sorted(set(gpu_nodes) - set(ready))} within "
                f"{timeout:.0f}s: kubectl -n {namespace} describe pods -l "
                + ",".join(f"{k}={v}" for k, v in labels.items())
            )
        time.sleep(0.5)
    services, port = Services(state), metrics_port(daemonset)
    addresses = []
    for node, pod in sorted(ready.items()):
        address = f"{pod.status.podIP}:{port}"  # type: ignore[union-attr]
        services.add_scrape_target(f"{TARGET_PREFIX}-{node}", address, {"node": str(node)})
        addresses.append(address)
    return addresses
