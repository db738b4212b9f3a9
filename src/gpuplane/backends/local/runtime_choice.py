"""``runtime: auto`` resolved once, from the host's facts, with a reason per node (pure).

A node declared ``kwok`` or ``kubelet`` keeps what it says. Among the ``auto`` nodes at
most one becomes a kubelet node (one per host: every kubelet agrees on /var/lib/kubelet,
the pod network and the device plugins' socket), and only when this host can run one:
- the kubelet-host checks pass (root, cgroups, overlayfs; doctor's ``kubelet.*``);
- no node of the platform is declared ``kubelet`` already;
- no other cluster holds this host's kubelet root (the test suite's real node, say);
- then the gpu node if NVML shows a GPU here, else the first app node.
Everything else is KWOK, and says why.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from gpuplane.backends.base import RuntimeChoice
from gpuplane.topology import Node, Platform

Resolved = Literal["kwok", "kubelet"]


@dataclass(frozen=True)
class HostFacts:
    """What decides ``auto``: failed kubelet-host checks (their ids and summaries), the
    GPUs NVML sees, and which other cluster (if any) holds the host's kubelet root."""

    failed_checks: tuple[str, ...]
    gpus: int
    kubelet_root_holder: str | None


# For a platform without ``auto`` nodes: the facts are never read.
NO_FACTS_NEEDED = HostFacts(failed_checks=(), gpus=0, kubelet_root_holder=None)


def resolve_runtimes(platform: Platform, facts: HostFacts) -> tuple[RuntimeChoice, ...]:
    """One resolution per node, in platform order."""
    autos = platform.auto_nodes
    chosen = _chosen(platform, autos, facts) if autos else None
    held = _held_back(platform, facts)
    resolutions = []
    for node in platform.spec.nodes:
        if node.runtime != "auto":
            resolutions.append(RuntimeChoice(node.name, node.runtime, node.runtime, "declared"))
        elif chosen is not None and node.name == chosen[0].name:
            resolutions.append(RuntimeChoice(node.name, "auto", "kubelet", chosen[1]))
        else:
            reason = _why_kwok(node, chosen[0] if chosen else None, held, facts)
            resolutions.append(RuntimeChoice(node.name, "auto", "kwok", reason))
    return tuple(resolutions)


def _held_back(platform: Platform, facts: HostFacts) -> str | None:
    """Why no auto node may be real on this host at all, if anything says so."""
    if facts.failed_checks:
        return "this host cannot run a kubelet node (" + "; ".join(facts.failed_checks) + ")"
    declared = [node.name for node in platform.kubelet_nodes]
    if declared:
        return f"{declared[0]} is declared the kubelet node (one per host)"
    if facts.kubelet_root_holder is not None:
        return (
            f"this host's kubelet root is held by {facts.kubelet_root_holder} "
            "(one kubelet node per host)"
        )
    return None


def _chosen(
    platform: Platform, autos: tuple[Node, ...], facts: HostFacts
) -> tuple[Node, str] | None:
    if _held_back(platform, facts) is not None:
        return None
    gpu = next((node for node in autos if node.is_gpu), None)
    if gpu is not None and facts.gpus > 0:
        return gpu, f"NVML shows {facts.gpus} GPU(s) on this host: the gpu node runs for real"
    app = next((node for node in autos if node.role == "app"), None)
    if app is not None:
        why = "no GPU here" if gpu is not None else "no auto gpu node"
        return app, f"this host can run a kubelet node ({why}): the app node runs for real"
    return None


def _why_kwok(node: Node, chosen: Node | None, held: str | None, facts: HostFacts) -> str:
    if node.role == "control-plane":
        return "the control plane runs as host processes; its node is KWOK"
    if held is not None:
        return held
    if node.is_gpu and facts.gpus == 0:
        return "NVML shows no GPU on this host"
    if chosen is not None:
        return f"{chosen.name} is this host's kubelet node (one per host)"
    return "only a gpu or app node is made real"


def resolved_platform(platform: Platform, resolutions: tuple[RuntimeChoice, ...]) -> Platform:
    runtimes: dict[str, Literal["kwok", "kubelet", "auto"]] = {
        r.node: "kubelet" if r.runtime == "kubelet" else "kwok"
        for r in resolutions
        if r.declared == "auto"
    }
    return platform.with_runtimes(runtimes) if runtimes else platform
