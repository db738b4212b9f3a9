"""A Node as status rows show it, the same for every backend."""

from __future__ import annotations

from lightkube.resources.core_v1 import Node as NodeResource

from gpuplane.backends.base import NodeStatus
from gpuplane.topology import ROLE_LABEL, SIMULATED_ANNOTATION


def is_ready(node: NodeResource) -> bool:
    conditions = node.status.conditions if node.status and node.status.conditions else []
    return any(c.type == "Ready" and c.status == "True" for c in conditions)


def node_status(node: NodeResource) -> NodeStatus:
    meta = node.metadata
    labels = (meta.labels if meta else None) or {}
    annotations = (meta.annotations if meta else None) or {}
    taints = node.spec.taints if node.spec and node.spec.taints else []
    allocatable = node.status.allocatable if node.status and node.status.allocatable else {}
    return NodeStatus(
        name=(meta.name if meta else None) or "?",
        role=labels.get(ROLE_LABEL, "-"),
        ready=is_ready(node),
        taints=tuple(f"{t.key}={t.value or ''}:{t.effect}" for t in taints),
        gpus_allocatable=int(allocatable.get("nvidia.com/gpu", "0")),
        simulated=annotations.get(SIMULATED_ANNOTATION) == "true",
    )
