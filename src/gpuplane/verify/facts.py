"""What the checks need to know about a cluster, read once and held as plain data."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from gpuplane.topology import ROLE_LABEL, SIMULATED_ANNOTATION

ROLE_LABEL_PREFIX = "node-role.kubernetes.io/"
GPU_RESOURCE = "nvidia.com/gpu"


@dataclass(frozen=True)
class NodeFacts:
    name: str
    labels: dict[str, str]
    taints: tuple[str, ...]
    ready: bool
    gpus_allocatable: int
    simulated: bool

    @property
    def role_labels(self) -> dict[str, str]:
        """Labels that claim a platform role (what a rogue node would carry)."""
        return {
            key: value
            for key, value in self.labels.items()
            if key.startswith(ROLE_LABEL_PREFIX) or key == ROLE_LABEL
        }


def taint_text(taint: dict[str, Any]) -> str:
    return f"{taint.get('key', '')}={taint.get('value') or ''}:{taint.get('effect', '')}"


def node_facts(node: dict[str, Any]) -> NodeFacts:
    """Facts of one Node object (as the API returns it, a dict)."""
    metadata = node.get("metadata", {})
    status = node.get("status", {})
    conditions = status.get("conditions") or []
    allocatable = status.get("allocatable") or {}
    return NodeFacts(
        name=metadata.get("name", ""),
        labels=dict(metadata.get("labels") or {}),
        taints=tuple(taint_text(t) for t in node.get("spec", {}).get("taints") or []),
        ready=any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions),
        gpus_allocatable=_quantity(allocatable.get(GPU_RESOURCE, "0")),
        simulated=(metadata.get("annotations") or {}).get(SIMULATED_ANNOTATION) == "true",
    )


def _quantity(value: object) -> int:
    try:
        return int(str(value))
    except ValueError:
        return 0
