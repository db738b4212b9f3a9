"""Node objects for the local backend, built from the topology (pure).

KWOK keeps a node Ready when it carries the ``kwok.x-k8s.io/node: fake`` annotation
(the selector kwokctl configures). Capacity mirrors a modest workstation; the
``nvidia.com/gpu`` extended resource is what the device plugin would advertise.
"""

from __future__ import annotations

from typing import Any

from gpuplane.backends.identity import bootstrap_labels, taint_dicts
from gpuplane.backends.local.gfd_labels import gpu_feature_labels
from gpuplane.kube.nodes import GPU_RESOURCE, SIMULATED_ANNOTATION
from gpuplane.topology import Node

KWOK_ANNOTATION = "kwok.x-k8s.io/node"
NODE_CPU = "8"
NODE_MEMORY = "32Gi"
NODE_PODS = "110"


def node_capacity(node: Node) -> dict[str, str]:
    capacity = {"cpu": NODE_CPU, "memory": NODE_MEMORY, "pods": NODE_PODS}
    if node.gpu_count:
        capacity[GPU_RESOURCE] = str(node.gpu_allocatable)
    return capacity


def node_manifest(node: Node) -> dict[str, Any]:
    """The Node object registered for ``node``, as a kubelet (or k3s agent) would.

    ``status.nodeInfo`` (kubelet version and so on) is left to the kwok controller.
    """
    labels = {
        "kubernetes.io/hostname": node.name,
        "kubernetes.io/os": "linux",
        "kubernetes.io/arch": "amd64",
        "type": "kwok",
        **bootstrap_labels(node),
        **gpu_feature_labels(node),
    }
    capacity = node_capacity(node)
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": node.name,
            "labels": labels,
            "annotations": {
                KWOK_ANNOTATION: "fake",
                SIMULATED_ANNOTATION: "true",
                "node.alpha.kubernetes.io/ttl": "0",
            },
        },
        "spec": {"taints": taint_dicts(node)},
        "status": {
            "capacity": capacity,
            "allocatable": dict(capacity),
        },
    }
