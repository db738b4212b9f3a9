"""Find the NVIDIA device plugin's DaemonSets and their pods, whatever they are named."""

from __future__ import annotations

from lightkube import Client
from lightkube.resources.apps_v1 import DaemonSet
from lightkube.resources.core_v1 import Pod

from gpuplane.verify.gpu_checks import PluginPod

PLUGIN_IMAGE_MARK = "k8s-device-plugin"


def find_device_plugin(client: Client) -> tuple[list[str], list[PluginPod]]:
    names: list[str] = []
    pods: list[PluginPod] = []
    for daemonset in client.list(DaemonSet, namespace="*"):
        spec = daemonset.spec
        meta = daemonset.metadata
        if spec is None or meta is None or spec.template.spec is None:
            continue
        images = [c.image or "" for c in spec.template.spec.containers]
        if not any(PLUGIN_IMAGE_MARK in image for image in images):
            continue
        names.append(f"{meta.namespace}/{meta.name}")
        selector = spec.selector.matchLabels or {}
        for pod in client.list(Pod, namespace=meta.namespace, labels=selector):
            statuses = pod.status.containerStatuses if pod.status else None
            pods.append(
                PluginPod(
                    name=f"{meta.namespace}/{pod.metadata.name if pod.metadata else '?'}",
                    node=pod.spec.nodeName if pod.spec else None,
                    ready=bool(statuses) and all(s.ready for s in statuses or []),
                )
            )
    return names, pods
