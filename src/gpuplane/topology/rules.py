"""Rules that span fields or nodes of a parsed platform, as a pure function.

Each broken rule is a ``Problem`` carrying the path of the field to blame, so the
loader can name the file, the line, the node and the field.
"""

from __future__ import annotations

from dataclasses import dataclass

from gpuplane.shared.quoting import quoted
from gpuplane.topology.model import ROLE_LABEL, Platform

Path = tuple[str | int, ...]


@dataclass(frozen=True)
class Problem:
    """One broken rule: where (a path into the document) and what."""

    path: Path
    message: str


def check_rules(platform: Platform) -> list[Problem]:
    """Every cross-field rule the pydantic model cannot express on one field."""
    problems: list[Problem] = []
    first_index: dict[str, int] = {}
    for index, node in enumerate(platform.spec.nodes):
        at: Path = ("spec", "nodes", index)
        if node.name in first_index:
            problems.append(
                Problem(
                    (*at, "name"),
                    f"duplicate node name {quoted(node.name)} "
                    f"(already used by spec.nodes[{first_index[node.name]}])",
                )
            )
        else:
            first_index[node.name] = index
        problems.extend(_node_problems(platform, index, at))

    sharing = {
        n.gpu_sharing.replicas if n.gpu_sharing else 1 for n in platform.nodes_with_role("gpu")
    }
    if len(sharing) > 1:
        problems.append(
            Problem(
                ("spec", "nodes"),
                "every gpu node must declare the same gpuSharing.replicas (the device "
                f"plugin's time-slicing config is cluster-wide), found {sorted(sharing)}",
            )
        )
    problems.extend(_runtime_problems(platform))
    control_planes = [n.name for n in platform.spec.nodes if n.role == "control-plane"]
    if len(control_planes) != 1:
        found = ", ".join(control_planes) if control_planes else "none"
        problems.append(
            Problem(
                ("spec", "nodes"),
                f"exactly one control-plane node is required, found {len(control_planes)} "
                f"({found})",
            )
        )
    return problems


def _runtime_problems(platform: Platform) -> list[Problem]:
    """Where a real kubelet node may run: the local backend, one per host, not the
    control plane (which runs as host processes, not as pods on a node)."""
    problems: list[Problem] = []
    kubelet_indexes = [i for i, n in enumerate(platform.spec.nodes) if n.runtime == "kubelet"]
    for index in kubelet_indexes:
        node = platform.spec.nodes[index]
        at: Path = ("spec", "nodes", index, "runtime")
        if platform.spec.backend != "local":
            problems.append(
                Problem(
                    at,
                    f"runtime applies to the local backend only (backend is "
                    f"{platform.spec.backend!r}, whose nodes are always real)",
                )
            )
        if node.role == "control-plane":
            problems.append(
                Problem(
                    at,
                    "the control-plane node cannot be a kubelet node: the control "
                    "plane runs as host processes and its node is KWOK",
                )
            )
    for index in kubelet_indexes[1:]:
        first = platform.spec.nodes[kubelet_indexes[0]].name
        problems.append(
            Problem(
                ("spec", "nodes", index, "runtime"),
                f"at most one kubelet node per host ({quoted(first)} is one already): kubelets "
                "on one host would share /var/lib/kubelet, the pod network and the "
                "device plugins' socket directory",
            )
        )
    return problems


def _node_problems(platform: Platform, index: int, at: Path) -> list[Problem]:
    node = platform.spec.nodes[index]
    problems: list[Problem] = []
    if node.role == "gpu":
        if node.gpu_count < 1:
            problems.append(Problem((*at, "gpus"), "a gpu node must declare gpus >= 1"))
        if not any(taint.effect == "NoSchedule" for taint in node.parsed_taints):
            problems.append(
                Problem(
                    (*at, "taints"),
                    "a gpu node must carry a NoSchedule taint (such as "
                    "node-role.kubernetes.io/gpu=true:NoSchedule) so only pods that "
                    "tolerate it land there",
                )
            )
    else:
        if node.gpu_count > 0:
            problems.append(
                Problem(
                    (*at, "gpus"),
                    f"only gpu-role nodes may declare gpus (this node's role is {node.role})",
                )
            )
        if node.gpu_product is not None:
            problems.append(
                Problem(
                    (*at, "gpuProduct"),
                    f"only gpu-role nodes may declare gpuProduct (this node's role is {node.role})",
                )
            )
        if node.gpu_sharing is not None:
            problems.append(
                Problem(
                    (*at, "gpuSharing"),
                    f"only gpu-role nodes may declare gpuSharing (this node's role is {node.role})",
                )
            )
        if node.gpu_memory_mib is not None:
            problems.append(
                Problem(
                    (*at, "gpuMemoryMiB"),
                    "only gpu-role nodes may declare gpuMemoryMiB "
                    f"(this node's role is {node.role})",
                )
            )
    declared_role = node.labels.get(ROLE_LABEL)
    if declared_role is not None and declared_role != node.role:
        problems.append(
            Problem(
                (*at, "labels"),
                f"label {ROLE_LABEL}={declared_role} contradicts role {node.role!r} "
                "(gpuplane sets this label from the role)",
            )
        )
    return problems
