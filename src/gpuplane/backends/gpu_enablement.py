"""GPU enablement, the same on every backend: RuntimeClass ``nvidia`` and the NVIDIA device
plugin DaemonSet from ``apps/gpu-enablement`` (its image overridden where the upstream one
cannot be pulled), the plugin's config from the topology (time-slicing when the gpu
nodes declare ``gpuSharing``), then a wait until every gpu node advertises its GPUs.

Caveats of time-slicing (documented for users): no memory or fault isolation between
the pods sharing a GPU, and a request for more than one ``nvidia.com/gpu`` does not give
more compute, only more slices.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import yaml
from lightkube import Client

from gpuplane.kube.apply import apply_documents, read_documents
from gpuplane.kube.node_wait import wait_nodes
from gpuplane.kube.nodes import GPU_RESOURCE
from gpuplane.topology import Platform

RUNTIME_CLASS_MANIFEST = "apps/gpu-enablement/runtimeclass.yaml"
GPU_MANIFESTS = (RUNTIME_CLASS_MANIFEST, "apps/gpu-enablement/nvidia-device-plugin.yaml")
PLUGIN_DAEMONSET = "nvidia-device-plugin"

CONFIG_MAP = "nvidia-device-plugin-config"
NAMESPACE = "gpu-operator-resources"


def device_plugin_config(platform: Platform) -> dict[str, Any]:
    config: dict[str, Any] = {
        "version": "v1",
        "flags": {"migStrategy": "none", "failOnInitError": True},
    }
    replicas = {n.gpu_sharing.replicas for n in platform.nodes_with_role("gpu") if n.gpu_sharing}
    if replicas:
        config["sharing"] = {
            "timeSlicing": {
                "resources": [{"name": GPU_RESOURCE, "replicas": max(replicas)}],
            }
        }
    return config


def config_map(platform: Platform) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": CONFIG_MAP, "namespace": NAMESPACE},
        "data": {"config.yaml": yaml.safe_dump(device_plugin_config(platform), sort_keys=False)},
    }


def enablement_documents(
    repo: Path, platform: Platform, *, plugin_image: str | None = None
) -> list[dict[str, Any]]:
    """The manifests as they are, the plugin's image overridden if asked, its ConfigMap
    rendered from the topology, and a config hash that rolls the plugin on a change."""
    documents = read_documents([repo / path for path in GPU_MANIFESTS])
    rendered = config_map(platform)
    digest = hashlib.sha256(rendered["data"]["config.yaml"].encode()).hexdigest()[:16]
    for document in documents:
        if document.get("kind") == "ConfigMap" and document["metadata"]["name"] == CONFIG_MAP:
            document["data"] = rendered["data"]
        if document.get("kind") == "DaemonSet" and document["metadata"]["name"] == PLUGIN_DAEMONSET:
            template = document["spec"]["template"]
            template["metadata"].setdefault("annotations", {})["gpuplane.io/config-hash"] = digest
            if plugin_image is not None:
                template["spec"]["containers"][0]["image"] = plugin_image
    return documents


def apply_gpu_enablement(
    client: Client, repo: Path, platform: Platform, *, plugin_image: str | None = None
) -> list[str]:
    return apply_documents(client, enablement_documents(repo, platform, plugin_image=plugin_image))


def wait_gpus(
    client: Client, platform: Platform, nodes: list[str], *, timeout: float = 300.0
) -> None:
    """Wait until each gpu node of ``nodes`` advertises its GPUs (times time-slicing)."""
    wanted = {n.name: n.gpu_allocatable for n in platform.nodes_with_role("gpu")}
    wait_nodes(
        client,
        [name for name in nodes if name in wanted],
        lambda view: view is not None and view.gpus_allocatable >= wanted[view.name],
        f"advertise no nvidia.com/gpu: check the device plugin pods "
        f"(kubectl -n {NAMESPACE} get pods) and gpuplane doctor",
        timeout=timeout,
        interval=0.5,
    )
