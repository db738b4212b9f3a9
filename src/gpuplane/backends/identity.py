"""Node identity set at registration, the same on every backend.

A kubelet may register its node with taints and with labels outside the reserved
``node-role.kubernetes.io/*`` prefix (NodeRestriction forbids those). So at bootstrap a
node gets its taints and ``gpuplane.io/role``; the declared labels follow in the
platform step (``platform_labels``), on k3d and sim alike.
"""

from __future__ import annotations

from gpuplane.topology import ROLE_LABEL, Node

# Labels a kubelet may not set on itself (NodeRestriction admission plugin).
RESTRICTED_LABEL_PREFIXES = ("node-role.kubernetes.io/", "node-restriction.kubernetes.io/")

# GPU Feature Discovery reports memory in MiB; these are its values for common cards.
KNOWN_GPU_MEMORY_MIB = {
    "NVIDIA-GeForce-RTX-4090": 24564,
    "NVIDIA-GeForce-RTX-3090": 24576,
    "NVIDIA-RTX-A6000": 49140,
    "NVIDIA-L4": 23034,
    "NVIDIA-A10G": 23028,
    "NVIDIA-A100-SXM4-80GB": 81920,
    "NVIDIA-H100-80GB-HBM3": 81559,
    "Tesla-T4": 15360,
}
DEFAULT_GPU_PRODUCT = "NVIDIA-GeForce-RTX-4090"


def bootstrap_labels(node: Node) -> dict[str, str]:
    """Labels a node registers with: its role, plus declared labels a kubelet may set."""
    labels = {
        key: value
        for key, value in node.labels.items()
        if not key.startswith(RESTRICTED_LABEL_PREFIXES)
    }
    labels[ROLE_LABEL] = node.role
    return labels


def taint_dicts(node: Node) -> list[dict[str, str]]:
    """The node's declared taints in the Node API shape."""
    return [
        {"key": taint.key, "value": taint.value, "effect": taint.effect}
        for taint in node.parsed_taints
    ]


def gpu_feature_labels(node: Node) -> dict[str, str]:
    """The GPU Feature Discovery labels a real gpu node carries (empty for other roles)."""
    if node.role != "gpu" or node.gpu_count == 0:
        return {}
    product = node.gpu_product or DEFAULT_GPU_PRODUCT
    labels = {
        "nvidia.com/gpu.present": "true",
        "nvidia.com/gpu.product": product,
        "nvidia.com/gpu.count": str(node.gpu_count),
    }
    memory = node.gpu_memory_mib or KNOWN_GPU_MEMORY_MIB.get(product)
    if memory is not None:
        labels["nvidia.com/gpu.memory"] = str(memory)
    if node.gpu_sharing is not None:
        # What GFD reports under time-slicing: the product renamed, the replica count.
        labels["nvidia.com/gpu.product"] = f"{product}-SHARED"
        labels["nvidia.com/gpu.replicas"] = str(node.gpu_sharing.replicas)
    return labels
