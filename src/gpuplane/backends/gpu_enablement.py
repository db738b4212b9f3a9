"""GPU enablement, the same on every backend: RuntimeClass ``nvidia`` and the NVIDIA device
plugin DaemonSet from ``apps/gpu-enablement`` (its image overridden where the upstream one
cannot be pulled), the plugin's config from the topology (time-slicing when the gpu
nodes declare ``gpuSharing``) and the backend (the device-list strategy), then a wait until
every gpu node advertises its GPUs.

Device-list strategies: with ``envvar`` (the plugin's default, kept on k3d) the plugin
hands a GPU pod ``NVIDIA_VISIBLE_DEVICES`` and only the NVIDIA runtime (RuntimeClass
``nvidia``) turns that into devices. With ``cdi-cri`` (the local backend's kubelet gpu
node) the plugin writes a CDI spec of the node's GPUs and answers each allocation with CDI
device names, which the kubelet passes to containerd through the CRI; containerd 2 injects
them itself, so the allocated GPU, and only it, reaches the pod under any runtime.

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
# Where the DaemonSet mounts the host's root (apps/gpu-enablement): the plugin reads the
# driver's files there to write its CDI spec with the host's paths.
CONTAINER_DRIVER_ROOT = "/driver-root"
# The CDI spec the plugin writes under the host's /var/run/cdi (vendor
# k8s.device-plugin.nvidia.com, class gpu): whoever starts the node removes it.
PLUGIN_CDI_SPEC_NAME = "k8s.device-plugin.nvidia.com-gpu.json"


def device_plugin_config(platform: Platform, *, cdi_hook: Path | None = None) -> dict[str, Any]:
    """The plugin's config file. ``cdi_hook``, the host path of ``nvidia-cdi-hook`` (runc
    runs the spec's hooks on the host), switches it to the ``cdi-cri`` strategy; without
    it the plugin keeps its default, ``envvar``."""
    flags: dict[str, Any] = {"migStrategy": "none", "failOnInitError": True}
    if cdi_hook is not None:
        # The spec names host paths: the driver's files as the host sees them (/) though
        # the plugin reads them under CONTAINER_DRIVER_ROOT.
        flags["nvidiaDriverRoot"] = "/"
        flags["plugin"] = {
            "deviceListStrategy": "cdi-cri",
            "nvidiaCTKPath": str(cdi_hook),
            "containerDriverRoot": CONTAINER_DRIVER_ROOT,
        }
    config: dict[str, Any] = {"version": "v1", "flags": flags}
    replicas = {n.gpu_sharing.replicas for n in platform.gpu_nodes if n.gpu_sharing}
    if replicas:
        config["sharing"] = {
            "timeSlicing": {
                "resources": [{"name": GPU_RESOURCE, "replicas": max(replicas)}],
            }
        }
    return config


def config_map(platform: Platform, *, cdi_hook: Path | None = None) -> dict[str, Any]:
    config = device_plugin_config(platform, cdi_hook=cdi_hook)
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": CONFIG_MAP, "namespace": NAMESPACE},
        "data": {"config.yaml": yaml.safe_dump(config, sort_keys=False)},
    }


def enablement_documents(
    repo: Path,
    platform: Platform,
    *,
    plugin_image: str | None = None,
    cdi_hook: Path | None = None,
) -> list[dict[str, Any]]:
    """The manifests as they are, the plugin's image overridden if asked, its ConfigMap
    rendered from the topology (and the CDI strategy where ``cdi_hook`` is given), and a
    config hash that rolls the plugin on a change."""
    documents = read_documents([repo / path for path in GPU_MANIFESTS])
    rendered = config_map(platform, cdi_hook=cdi_hook)
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
    client: Client,
    repo: Path,
    platform: Platform,
    *,
    plugin_image: str | None = None,
    cdi_hook: Path | None = None,
) -> list[str]:
    documents = enablement_documents(repo, platform, plugin_image=plugin_image, cdi_hook=cdi_hook)
    return apply_documents(client, documents)


def wait_gpus(
    client: Client, platform: Platform, nodes: list[str], *, timeout: float = 300.0
) -> None:
    """Wait until each gpu node of ``nodes`` advertises its GPUs (times time-slicing)."""
    wanted = {n.name: n.gpu_allocatable for n in platform.gpu_nodes}
    wait_nodes(
        client,
        [name for name in nodes if name in wanted],
        lambda view: view is not None and view.gpus_allocatable >= wanted[view.name],
        f"advertise no nvidia.com/gpu: check the device plugin pods "
        f"(kubectl -n {NAMESPACE} get pods) and gpuplane doctor",
        timeout=timeout,
        interval=0.5,
    )
