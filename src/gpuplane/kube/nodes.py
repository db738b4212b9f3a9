"""The one reader of Node objects: readiness, taints, GPUs, and whether a node is real.

Status rows, verify and every backend read Nodes through ``read_node``, from the dict the
API returns (lightkube objects go through ``to_dict()`` first), so a Node is parsed once,
the same way everywhere.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from gpuplane.shared.resources import GPU_RESOURCE
from gpuplane.topology import ROLE_LABEL

__all__ = ["GPU_RESOURCE"]  # re-exported: verify and the backends read it from here

ROLE_LABEL_PREFIX = "node-role.kubernetes.io/"
# Marks a node whose kubelet is simulated (KWOK): status rows and verify say so. The
# local backend writes it; readers of any cluster only ever look for it.
SIMULATED_ANNOTATION = "gpuplane.io/simulated"
# Taints the node lifecycle controller manages (not-ready, unreachable, ...): never ours.
CONTROLLER_TAINT_PREFIX = "node.kubernetes.io/"


@dataclass(frozen=True)
class NodeView:
    """A Node as gpuplane reads it; ``taints`` as ``key=value:Effect`` text."""

    name: str
    labels: dict[str, str]
    taints: tuple[str, ...]
    ready: bool
    gpus_allocatable: int
    simulated: bool
    runtime: str

    @property
    def role(self) -> str:
        return self.labels.get(ROLE_LABEL, "-")

    @property
    def role_labels(self) -> dict[str, str]:
        """Labels that claim a platform role (what a rogue node would carry)."""
        return {
            key: value
            for key, value in self.labels.items()
            if key.startswith(ROLE_LABEL_PREFIX) or key == ROLE_LABEL
        }

    @property
    def schedulable(self) -> bool:
        """Ready, and the lifecycle controller has lifted its not-ready taint."""
        lifecycle = any(taint.startswith(CONTROLLER_TAINT_PREFIX) for taint in self.taints)
        return self.ready and not lifecycle


def taint_text(taint: dict[str, Any]) -> str:
    return f"{taint.get('key', '')}={taint.get('value') or ''}:{taint.get('effect', '')}"


def quantity(value: object) -> int:
    """A whole-number resource quantity ('2'); anything else reads as 0."""
    try:
        return int(str(value))
    except ValueError:
        return 0


def read_node(node: dict[str, Any]) -> NodeView:
    """Read one Node object (the API's dict shape)."""
    metadata = node.get("metadata") or {}
    status = node.get("status") or {}
    conditions = status.get("conditions") or []
    allocatable = status.get("allocatable") or {}
    info = status.get("nodeInfo") or {}
    simulated = (metadata.get("annotations") or {}).get(SIMULATED_ANNOTATION) == "true"
    return NodeView(
        name=metadata.get("name") or "?",
        labels=dict(metadata.get("labels") or {}),
        taints=tuple(taint_text(t) for t in (node.get("spec") or {}).get("taints") or []),
        ready=any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions),
        gpus_allocatable=quantity(allocatable.get(GPU_RESOURCE, "0")),
        simulated=simulated,
        runtime="kwok" if simulated else str(info.get("containerRuntimeVersion") or "-"),
    )
