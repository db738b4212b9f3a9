"""GPU checks: capacity only where declared, GFD labels, device plugin placement (pure)."""

from __future__ import annotations

from dataclasses import dataclass

from gpuplane.kube.nodes import NodeView
from gpuplane.topology import Platform
from gpuplane.verify.model import CheckResult, skipped, verdict

GFD_LABELS = ("nvidia.com/gpu.present", "nvidia.com/gpu.product", "nvidia.com/gpu.count")
DEVICE_PLUGIN_DESCRIPTION = "the NVIDIA device plugin runs, ready, on gpu nodes only"


def check_capacity(platform: Platform, nodes: list[NodeView]) -> CheckResult:
    declared = {node.name: node for node in platform.spec.nodes}
    problems: list[str] = []
    ok: list[str] = []
    for node in nodes:
        spec = declared.get(node.name)
        wanted = spec.gpu_allocatable if spec is not None and spec.is_gpu else 0
        if node.gpus_allocatable != wanted:
            role = spec.role if spec is not None else "undeclared"
            problems.append(
                f"node {node.name} ({role}): allocatable nvidia.com/gpu is "
                f"{node.gpus_allocatable}, declared {wanted}"
            )
        elif wanted:
            ok.append(f"{node.name}: {wanted} GPU(s) allocatable")
    return verdict(
        "gpu.capacity",
        "allocatable nvidia.com/gpu exactly on gpu nodes, equal to the declared count",
        problems,
        ok,
    )


def check_feature_labels(platform: Platform, nodes: list[NodeView]) -> CheckResult:
    live = {node.name: node for node in nodes}
    problems: list[str] = []
    ok: list[str] = []
    for spec in platform.gpu_nodes:
        node = live.get(spec.name)
        if node is None:
            continue
        missing = [key for key in GFD_LABELS if key not in node.labels]
        if missing:
            problems.append(f"node {spec.name}: missing {', '.join(missing)}")
            continue
        if node.labels["nvidia.com/gpu.count"] != str(spec.gpu_count):
            problems.append(
                f"node {spec.name}: nvidia.com/gpu.count is {node.labels['nvidia.com/gpu.count']}, "
                f"declared {spec.gpu_count}"
            )
            continue
        ok.append(f"{spec.name}: {node.labels['nvidia.com/gpu.product']}")
    return verdict(
        "gpu.feature-labels",
        "GPU Feature Discovery labels (present, product, count) on gpu nodes",
        problems,
        ok,
    )


@dataclass(frozen=True)
class PluginPod:
    name: str
    node: str | None
    ready: bool


def check_device_plugin(
    platform: Platform, simulated: bool, daemonsets: list[str], pods: list[PluginPod]
) -> CheckResult:
    """``daemonsets``/``pods``: the device plugin's, found by the runner."""
    if simulated:
        return skipped(
            "gpu.device-plugin",
            DEVICE_PLUGIN_DESCRIPTION,
            "simulated: capacity written by the local backend",
        )
    gpu_nodes = {node.name for node in platform.gpu_nodes}
    if not daemonsets:
        return verdict(
            "gpu.device-plugin",
            DEVICE_PLUGIN_DESCRIPTION,
            ["no NVIDIA device plugin DaemonSet found (image k8s-device-plugin)"],
            [],
        )
    problems = []
    covered = set()
    for pod in pods:
        if pod.node not in gpu_nodes:
            problems.append(f"pod {pod.name} runs on {pod.node or 'no node'}, not a gpu node")
        elif not pod.ready:
            problems.append(f"pod {pod.name} on {pod.node} is not ready")
        else:
            covered.add(pod.node)
    for name in sorted(gpu_nodes - covered):
        if not any(pod.node == name for pod in pods):
            problems.append(
                f"no device plugin pod on gpu node {name} (check the DaemonSet's "
                "nodeSelector and its toleration of the gpu taint)"
            )
    return verdict(
        "gpu.device-plugin",
        DEVICE_PLUGIN_DESCRIPTION,
        problems,
        [f"{', '.join(daemonsets)}: ready on {', '.join(sorted(covered))}"],
    )
