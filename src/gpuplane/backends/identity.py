"""Node identity set at registration, the same on every backend.

A kubelet may register its node with taints and with labels outside the reserved
``node-role.kubernetes.io/*`` prefix (NodeRestriction forbids those). So at bootstrap a
node gets its taints and ``gpuplane.io/role``; the declared labels follow in the
platform step (``platform_labels``), on k3d and local alike.
"""

from __future__ import annotations

from gpuplane.topology import ROLE_LABEL, Node

# Labels a kubelet may not set on itself (NodeRestriction admission plugin).
RESTRICTED_LABEL_PREFIXES = ("node-role.kubernetes.io/", "node-restriction.kubernetes.io/")


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
