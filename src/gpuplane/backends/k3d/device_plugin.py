"""The NVIDIA device plugin's config from the topology (pure): time-slicing when the gpu
nodes declare ``gpuSharing``.

Caveats of time-slicing (documented for users): no memory or fault isolation between
the pods sharing a GPU, and a request for more than one ``nvidia.com/gpu`` does not give
more compute, only more slices.
"""

from __future__ import annotations

from typing import Any

import yaml

from gpuplane.topology import Platform

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
                "resources": [{"name": "nvidia.com/gpu", "replicas": max(replicas)}],
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
