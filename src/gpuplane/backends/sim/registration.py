"""Register the topology's nodes in a running sim cluster and converge them.

What a kubelet does on a real node (register with taints, bootstrap labels and
capacity) is done here through the API; KWOK then keeps the nodes Ready.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, cast

from lightkube import Client
from lightkube.core.exceptions import ApiError
from lightkube.resources.core_v1 import Node as NodeResource
from lightkube.types import PatchType

from gpuplane.backends.node_status import is_ready
from gpuplane.backends.sim.nodes import node_manifest
from gpuplane.errors import OperationError
from gpuplane.topology import SIMULATED_ANNOTATION, Platform

NOT_FOUND = 404


# Taints the node lifecycle controller manages (not-ready, unreachable, ...): never ours.
CONTROLLER_TAINT_PREFIX = "node.kubernetes.io/"


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
    """Create missing nodes, repair drifted ones, delete undeclared simulated ones."""
    changes: list[str] = []
    declared = {node.name for node in platform.spec.nodes}
    for node in platform.spec.nodes:
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
    for live_node in client.list(NodeResource):
        meta = live_node.metadata
        if meta is None or meta.name is None or meta.name in declared:
            continue
        if (meta.annotations or {}).get(SIMULATED_ANNOTATION) == "true":
            client.delete(NodeResource, meta.name)
            changes.append(f"node {meta.name} removed (no longer declared)")
    return changes


def is_schedulable(node: NodeResource) -> bool:
    """Ready, and the lifecycle controller has lifted its not-ready taint."""
    taints = node.spec.taints if node.spec and node.spec.taints else []
    lifecycle = any(t.key.startswith(CONTROLLER_TAINT_PREFIX) for t in taints)
    return is_ready(node) and not lifecycle


def wait_ready(
    client: Client,
    names: list[str],
    *,
    timeout: float = 60.0,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> None:
    """Wait until every node in ``names`` is Ready and schedulable; name laggards on timeout."""
    deadline = clock() + timeout
    pending = list(names)
    while True:
        pending = [name for name in pending if not is_schedulable(client.get(NodeResource, name))]
        if not pending:
            return
        if clock() > deadline:
            raise OperationError(
                f"nodes not Ready after {timeout:.0f}s: {', '.join(pending)} "
                "(is the kwok controller running? see its log in the state dir)"
            )
        sleep(0.05)
