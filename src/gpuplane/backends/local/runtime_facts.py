"""The host facts ``runtime: auto`` is resolved from (I/O; the decision is
``runtime_choice``): doctor's kubelet-host checks, NVML's GPU count, and which cluster
holds this host's kubelet root."""

from __future__ import annotations

from pathlib import Path

from gpuplane.backends.local.kubelet.layout import KUBELET_ROOT
from gpuplane.backends.local.kubelet.node import kubelet_root_owner
from gpuplane.backends.local.runtime_choice import HostFacts
from gpuplane.doctor import Level
from gpuplane.doctor.kubelet_host import collect_kubelet_facts, kubelet_checks
from gpuplane.topology import Platform


def kubelet_root_holder(own_cluster_dir: Path, root: Path = KUBELET_ROOT) -> str | None:
    """The other cluster whose kubelet node uses this host's kubelet root, if any."""
    owner = kubelet_root_owner(root)
    return None if owner == str(own_cluster_dir) else owner


def collect_host_facts(platform: Platform, own_cluster_dir: Path) -> HostFacts:
    gpu_wanted = any(node.is_gpu for node in platform.auto_nodes)
    facts = collect_kubelet_facts(gpu=gpu_wanted)
    failed = tuple(
        f"{check.id}: {check.summary}"
        for check in kubelet_checks(facts, gpu=False)
        if check.level is Level.FAIL
    )
    gpus = facts.nvml.gpus if gpu_wanted and not facts.nvml.error else 0
    return HostFacts(failed, gpus, kubelet_root_holder(own_cluster_dir))
