"""Register the topology's nodes in a running local cluster and converge them.

What a kubelet does on a real node (register with taints, bootstrap labels and
capacity) is done here through the API; KWOK then keeps the nodes Ready.
"""

from __future__ import annotations

from typing import Any, cast

from lightkube import Client
from lightkube.core.exceptions import ApiError
from lightkube.resources.core_v1 import Node as NodeResource
from lightkube.types import PatchType

from gpuplane.backends.local.kwok_nodes import node_manifest
from gpuplane.kube.node_wait import wait_nodes
from gpuplane.kube.nodes import CONTROLLER_TAINT_PREFIX, SIMULATED_ANNOTATION
from gpuplane.topology import Platform

NOT_FOUND = 404


def _declared_taints(taints: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        {key: taint.get(key) or "" for key in ("key", "value", "effect")}
        for taint in taints
        if not str(taint.get("key", "")).startswith(CONTROLLER_TAINT_PREFIX)
    ]


def _subset_differs(wanted: dict[str, str], actual: dict[str, str]) -> bool:
    return any(actual.get(key) != value for key, value in wanted.items())


def node_drift(wanted: dict[str, Any], actual: dict[str, Any]) -> list[str]:
    """What of ``wanted`` (a manifest) the live node ``actual`` lacks (pure)."""
    drift = []
    if _subset_differs(wanted["metadata"]["labels"], actual["metadata"].get("labels") or {}):
        drift.append("labels")
    live_taints = actual.get("spec", {}).get("taints") or []
    if _declared_taints(wanted["spec"].get("taints") or []) != _declared_taints(live_taints):
        drift.append("taints")
    live_capacity = actual.get("status", {}).get("capacity") or {}
    if _subset_differs(wanted["status"]["capacity"], live_capacity):
        drift.append("capacity")
    return drift


def register_nodes(client: Client, platform: Platform) -> list[str]:
    """Create missing KWOK nodes, repair drifted ones, delete undeclared simulated ones.

    Kubelet nodes register themselves; a simulated node of the same name (the node was
    KWOK before) is deleted first so the kubelet can take the name.
    """
    changes: list[str] = []
    simulated = {node.name for node in platform.kwok_nodes}
    for live_node in client.list(NodeResource):
        meta = live_node.metadata
        if meta is None or meta.name is None or meta.name in simulated:
            continue
        if (meta.annotations or {}).get(SIMULATED_ANNOTATION) == "true":
            client.delete(NodeResource, meta.name)
            changes.append(f"simulated node {meta.name} removed (not declared as KWOK)")
    for node in platform.spec.nodes:
        if node.runtime != "kwok":
            continue
        wanted = node_manifest(node)
        try:
            live = client.get(NodeResource, node.name).to_dict()
        except ApiError as error:
            if error.status.code != NOT_FOUND:
                raise
            client.create(cast(NodeResource, NodeResource.from_dict(wanted)))
            changes.append(f"node {node.name} registered ({node.role})")
            continue
        drift = node_drift(wanted, live)
        if drift:
            client.patch(
                NodeResource,
                node.name,
                {"metadata": {"labels": wanted["metadata"]["labels"]}, "spec": wanted["spec"]},
                patch_type=PatchType.MERGE,
            )
            client.patch(
                NodeResource.Status,
                node.name,
                {"status": {k: wanted["status"][k] for k in ("capacity", "allocatable")}},
                patch_type=PatchType.MERGE,
            )
            changes.append(f"node {node.name} repaired ({', '.join(drift)})")
    return changes


def wait_ready(client: Client, names: list[str], *, timeout: float = 60.0) -> None:
    """Every node in ``names`` Ready and schedulable (kubelet nodes may take a while)."""
    wait_nodes(
        client,
        names,
        lambda view: view is not None and view.schedulable,
        "not Ready (KWOK nodes: is the kwok controller running? kubelet nodes: see the "
        "kubelet log under node-<name>/processes/ in the state dir)",
        timeout=timeout,
    )


def wait_registered(client: Client, names: list[str], *, timeout: float = 120.0) -> None:
    """A kubelet registers its Node itself: wait until each of ``names`` exists."""
    wait_nodes(
        client,
        names,
        lambda view: view is not None,
        "not registered by its kubelet (see node-<name>/processes/kubelet.log in the state dir)",
        timeout=timeout,
    )
