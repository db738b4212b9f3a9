"""What the local backend simulates right now, said in `gpuplane status` (pure): only
the parts that are simulated in this cluster, so a real kubelet node or GPU is never
described as simulated, nor a simulated one as real."""

from __future__ import annotations

from gpuplane.backends.base import NodeStatus


def simulated_parts(nodes: tuple[NodeStatus, ...], *, traffic_running: bool) -> tuple[str, ...]:
    kwok = [node.name for node in nodes if node.simulated]
    kwok_gpu = [node.name for node in nodes if node.simulated and node.role == "gpu"]
    parts = []
    if kwok:
        parts.append(
            f"nodes {', '.join(kwok)} are KWOK nodes: pods are scheduled and marked Running "
            "but never executed"
        )
    if kwok_gpu:
        parts.append(
            f"nvidia.com/gpu capacity and GFD labels of {', '.join(kwok_gpu)} are written "
            "from platform.yaml (no device plugin, no GPU)"
        )
    if traffic_running:
        parts.append(
            "traffic: http_requests_total and gateway_requests_total come from the traffic "
            "simulator (gpuplane sim traffic set NAMESPACE/DEPLOYMENT RPS)"
        )
        if kwok_gpu:
            parts.append(
                f"GPU metrics of {', '.join(kwok_gpu)}: DCGM_FI_DEV_* series per simulated "
                "GPU (dcgm-exporter names and labels), following the traffic of the "
                "Deployment whose pod holds the GPU"
            )
    return tuple(parts)
