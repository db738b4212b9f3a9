"""The platform step: apply each node's declared labels after bootstrap.

Both backends call this once their nodes are registered; it is the one place the
``node-role.kubernetes.io/*`` labels reach the cluster (see ``identity``).
"""

from __future__ import annotations

from lightkube import Client
from lightkube.resources.core_v1 import Node as NodeResource
from lightkube.types import PatchType

from gpuplane.topology import Platform


def missing_labels(declared: dict[str, str], actual: dict[str, str]) -> dict[str, str]:
    """The declared labels that ``actual`` lacks or holds with another value."""
    return {key: value for key, value in declared.items() if actual.get(key) != value}


def apply_node_labels(client: Client, platform: Platform) -> list[str]:
    """Patch every node's declared labels in; return the names of nodes that changed."""
    changed = []
    for node in platform.spec.nodes:
        current = client.get(NodeResource, node.name)
        actual = dict(current.metadata.labels or {}) if current.metadata else {}
        patch = missing_labels(node.labels, actual)
        if patch:
            client.patch(
                NodeResource,
                node.name,
                {"metadata": {"labels": patch}},
                patch_type=PatchType.MERGE,
            )
            changed.append(node.name)
    return changed
