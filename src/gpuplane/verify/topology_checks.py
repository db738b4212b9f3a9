"""Topology checks: the declared nodes, labels and taints against the live nodes (pure)."""

from __future__ import annotations

from collections.abc import Callable

from gpuplane.kube.nodes import NodeView
from gpuplane.topology import Node, Platform
from gpuplane.verify.model import CheckResult, verdict


def _by_name(nodes: list[NodeView]) -> dict[str, NodeView]:
    return {node.name: node for node in nodes}


def check_nodes(platform: Platform, nodes: list[NodeView]) -> CheckResult:
    live = _by_name(nodes)
    problems: list[str] = []
    ok: list[str] = []
    for declared in platform.spec.nodes:
        node = live.get(declared.name)
        if node is None:
            problems.append(f"node {declared.name} ({declared.role}) does not exist")
        elif not node.ready:
            problems.append(f"node {declared.name} is not Ready")
        else:
            ok.append(declared.name)
    summary = [f"{len(ok)} node(s) Ready: {', '.join(ok)}"]
    return verdict("topology.nodes", "every declared node exists and is Ready", problems, summary)


def _declared_items(
    platform: Platform,
    nodes: list[NodeView],
    items: Callable[[Node, NodeView], list[tuple[str, bool]]],
) -> tuple[list[str], list[str]]:
    """(problems, present) over each existing node's declared items.

    ``items(declared, live)`` gives (text, present) pairs; a missing node is reported by
    topology.nodes, not here.
    """
    live = _by_name(nodes)
    problems: list[str] = []
    present: list[str] = []
    for declared in platform.spec.nodes:
        node = live.get(declared.name)
        if node is None:
            continue
        for text, ok in items(declared, node):
            (present if ok else problems).append(f"node {declared.name}: {text}")
    return problems, present


def check_labels(platform: Platform, nodes: list[NodeView]) -> CheckResult:
    def labels(declared: Node, node: NodeView) -> list[tuple[str, bool]]:
        found = []
        for key, value in sorted(declared.labels.items()):
            actual = node.labels.get(key)
            shown = "" if actual == value else " missing" if actual is None else f" is {actual!r}"
            found.append((f"label {key}={value}{shown}", actual == value))
        return found

    problems, present = _declared_items(platform, nodes, labels)
    summary = [f"{len(present)} declared label(s) present", *present]
    return verdict("topology.labels", "every node has its declared labels", problems, summary)


def check_taints(platform: Platform, nodes: list[NodeView]) -> CheckResult:
    def taints(declared: Node, node: NodeView) -> list[tuple[str, bool]]:
        found = []
        for taint in declared.parsed_taints:
            ok = str(taint) in node.taints or f"{taint.key}=:{taint.effect}" in node.taints
            found.append((f"taint {taint}" + ("" if ok else " is missing"), ok))
        return found

    problems, present = _declared_items(platform, nodes, taints)
    summary = [f"{len(present)} declared taint(s) present", *present]
    return verdict("topology.taints", "every node has its declared taints", problems, summary)


def check_no_rogue_roles(platform: Platform, nodes: list[NodeView]) -> CheckResult:
    declared = {node.name for node in platform.spec.nodes}
    problems = [
        f"undeclared node {node.name} carries role label(s) "
        + ", ".join(f"{k}={v}" for k, v in sorted(node.role_labels.items()))
        for node in nodes
        if node.name not in declared and node.role_labels
    ]
    extra = sorted(node.name for node in nodes if node.name not in declared)
    ok = [f"undeclared nodes without role labels: {', '.join(extra)}"] if extra else []
    return verdict(
        "topology.no-rogue-roles", "no undeclared node carries a role label", problems, ok
    )
