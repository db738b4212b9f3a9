"""gpu-exporter where the local cluster's gpu node is real: the traffic simulator simulates
only KWOK nodes' GPUs, so on a kubelet gpu node the DCGM series that the dashboards and
the downscaler's GPU signal read come from NVML through ``apps/gpu-exporter`` (the
DaemonSet as it is, its image built here and imported into the node). Prometheus finds
each exporter pod as it finds the other real workloads, by its ``prometheus.io/scrape``
annotation (``pod_targets``), whoever applied the DaemonSet: a second target here would
scrape every series twice (the GPU e2e run found the HPA's GPU metric missing when only
this path registered one, 2026-12-07)."""

from __future__ import annotations

import time
from typing import Any

from lightkube import Client
from lightkube.resources.core_v1 import Pod

from gpuplane.errors import OperationError
from gpuplane.kube.apply import apply_documents, read_documents
from gpuplane.toolchain import repo_root

EXPORTER_MANIFEST = "apps/gpu-exporter/daemonset.yaml"


def daemonset_of(documents: list[dict[str, Any]]) -> dict[str, Any]:
    """The exporter's DaemonSet among the manifest's documents."""
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
    client: Client, gpu_nodes: list[str], *, timeout: float = 180.0
) -> list[str]:
    """Apply the exporter, wait until it is Ready on every node of ``gpu_nodes``; return
    the addresses Prometheus scrapes (found by ``pod_targets``)."""
    documents = read_documents([repo_root() / EXPORTER_MANIFEST])
    daemonset = daemonset_of(documents)
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
    port = metrics_port(daemonset)
    return [f"{pod.status.podIP}:{port}" for _, pod in sorted(ready.items())]  # type: ignore[union-attr]
