"""GPU Feature Discovery's labels, written from platform.yaml for simulated gpu nodes.

On a real gpu node NVIDIA's GFD (k3d) or the device plugin's host writes them; on a KWOK
node nothing would, so the local backend writes what GFD would report, so manifests and
dashboards that select on them work unchanged.
"""

from __future__ import annotations

from gpuplane.topology import Node

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


def gpu_feature_labels(node: Node) -> dict[str, str]:
    """The GPU Feature Discovery labels a real gpu node carries (empty for other roles)."""
    if not node.is_gpu or node.gpu_count == 0:
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
