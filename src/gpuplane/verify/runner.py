"""Run every check against a cluster and assemble the report."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from lightkube.resources.core_v1 import Node, Pod

from gpuplane.kube import ClusterUnreachableError, connect, is_reachable
from gpuplane.kube.nodes import NodeView, read_node
from gpuplane.topology import Platform
from gpuplane.verify.device_plugin import find_device_plugin
from gpuplane.verify.gpu_checks import check_capacity, check_device_plugin, check_feature_labels
from gpuplane.verify.model import CheckResult, Report, as_simulated, skipped
from gpuplane.verify.probe_runner import (
    create_namespace,
    delete_namespace,
    new_namespace_name,
    release_probe_pods,
    run_probes,
)
from gpuplane.verify.probes import build_probes, gpu_use
from gpuplane.verify.smoke import DESCRIPTION as SMOKE_DESCRIPTION
from gpuplane.verify.smoke import run_smoke_test
from gpuplane.verify.topology_checks import (
    check_labels,
    check_no_rogue_roles,
    check_nodes,
    check_taints,
)

# The checks that need nothing but the platform and the nodes, in report order.
NODE_CHECKS: tuple[Callable[[Platform, list[NodeView]], CheckResult], ...] = (
    check_nodes,
    check_labels,
    check_taints,
    check_no_rogue_roles,
    check_capacity,
    check_feature_labels,
)
# Checks that, on a KWOK gpu node, compare what the local backend wrote from platform.yaml
# with platform.yaml: reported as simulated, never as passed.
WRITTEN_BY_BACKEND = frozenset({"gpu.capacity", "gpu.feature-labels"})
SIMULATED_GPU_REASON = (
    "simulated: the gpu node is KWOK; its nvidia.com/gpu capacity and GFD labels were "
    "written by the local backend from platform.yaml, so this compares them with themselves"
)


@dataclass(frozen=True)
class VerifyOptions:
    kubeconfig: Path
    smoke_manifest: Path
    keep_probes: bool = False
    probe_timeout: float = 60.0
    smoke_timeout: float = 300.0
    # The smoke test's image where the manifest's cannot be pulled (offline kubelet nodes).
    smoke_image: str | None = None


def run_verify(platform: Platform, options: VerifyOptions) -> Report:
    start = time.monotonic()
    if not is_reachable(options.kubeconfig, timeout=10.0):
        raise ClusterUnreachableError(
            f"the cluster of {options.kubeconfig} is unreachable (is it up? gpuplane status)"
        )
    client = connect(options.kubeconfig)
    nodes = [read_node(node.to_dict()) for node in client.list(Node)]
    simulated = any(node.simulated for node in nodes)
    # The GPU checks run for real wherever the gpu nodes are real, even beside KWOK nodes
    # (a local cluster whose gpu node is a kubelet node).
    gpu_names = {node.name for node in platform.gpu_nodes}
    gpus_simulated = any(node.simulated for node in nodes if node.name in gpu_names)
    checks: list[CheckResult] = [check(platform, nodes) for check in NODE_CHECKS]
    if gpus_simulated:
        checks = [
            as_simulated(check, SIMULATED_GPU_REASON) if check.id in WRITTEN_BY_BACKEND else check
            for check in checks
        ]
    daemonsets, plugin_pods = ([], []) if gpus_simulated else find_device_plugin(client)
    checks.append(check_device_plugin(platform, gpus_simulated, daemonsets, plugin_pods))

    use = gpu_use([pod.to_dict() for pod in client.list(Pod, namespace="*")])
    namespace = new_namespace_name()
    create_namespace(client, namespace)
    notes: list[str] = []
    try:
        checks += run_probes(
            client, namespace, build_probes(platform, use), timeout=options.probe_timeout
        )
        if gpus_simulated:
            checks.append(skipped("gpu.smoke-test", SMOKE_DESCRIPTION, "needs a real GPU"))
        elif not platform.gpu_nodes:
            checks.append(skipped("gpu.smoke-test", SMOKE_DESCRIPTION, "no gpu node declared"))
        else:
            if not release_probe_pods(client, namespace):
                notes.append("probe pods were still terminating when the smoke test started")
            checks.append(
                run_smoke_test(
                    client,
                    namespace,
                    options.smoke_manifest,
                    timeout=options.smoke_timeout,
                    image=options.smoke_image,
                )
            )
    finally:
        if options.keep_probes:
            notes.append(f"probe namespace {namespace} kept (--keep-probes)")
        elif not delete_namespace(client, namespace):
            notes.append(f"probe namespace {namespace} was still terminating when verify ended")
    return Report(
        platform=platform.name,
        kubeconfig=str(options.kubeconfig),
        simulated=simulated,
        checks=tuple(checks),
        duration_seconds=round(time.monotonic() - start, 2),
        probe_namespace=namespace,
        notes=tuple(notes),
    )
