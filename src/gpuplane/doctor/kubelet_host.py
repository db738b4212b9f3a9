"""Host pre-flight for a kubelet node of the local backend: root, cgroups, overlayfs, swap,
and on a gpu node the NVIDIA driver through NVML (no nvidia-smi or Docker needed).

Facts are collected once (``collect_kubelet_facts``); the checks are pure.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from gpuplane.doctor.checks import DoctorCheck, Level
from gpuplane.nvml import NvmlProbe, probe_nvml
from gpuplane.topology import Platform


@dataclass(frozen=True)
class KubeletHostFacts:
    euid: int
    filesystems: str
    cgroup_hierarchies: tuple[str, ...]
    swaps: str
    nvml: NvmlProbe


def _read(path: Path) -> str:
    try:
        return path.read_text()
    except OSError:
        return ""


def collect_kubelet_facts(*, gpu: bool, root: Path = Path("/")) -> KubeletHostFacts:
    cgroups = root / "sys" / "fs" / "cgroup"
    hierarchies = tuple(sorted(p.name for p in cgroups.iterdir())) if cgroups.is_dir() else ()
    return KubeletHostFacts(
        euid=os.geteuid(),
        filesystems=_read(root / "proc" / "filesystems"),
        cgroup_hierarchies=hierarchies,
        swaps=_read(root / "proc" / "swaps"),
        nvml=probe_nvml() if gpu else NvmlProbe(error="not probed"),
    )


def kubelet_checks(facts: KubeletHostFacts, *, gpu: bool) -> list[DoctorCheck]:
    """What a kubelet node needs from this host, each failure with its fix."""
    checks = [
        DoctorCheck("kubelet.root", Level.OK, "running as root")
        if facts.euid == 0
        else DoctorCheck(
            "kubelet.root",
            Level.FAIL,
            f"running as uid {facts.euid}",
            "a kubelet node runs as root: it mounts, makes cgroups and the pod network",
            "run gpuplane as root (sudo), or declare the node runtime: kwok",
        ),
        DoctorCheck("kubelet.overlayfs", Level.OK, "overlay filesystem available")
        if "overlay" in facts.filesystems.split()
        else DoctorCheck(
            "kubelet.overlayfs",
            Level.FAIL,
            "no overlay filesystem",
            "containerd's snapshotter stacks image layers with overlayfs",
            "modprobe overlay",
        ),
        DoctorCheck("kubelet.cgroups", Level.OK, ", ".join(facts.cgroup_hierarchies[:6]))
        if facts.cgroup_hierarchies
        else DoctorCheck(
            "kubelet.cgroups",
            Level.FAIL,
            "nothing mounted at /sys/fs/cgroup",
            "the kubelet puts every pod in a cgroup",
            "mount the cgroup filesystem (v2, or v1 controllers)",
        ),
    ]
    swap_lines = [line for line in facts.swaps.splitlines()[1:] if line.strip()]
    checks.append(
        DoctorCheck("kubelet.swap", Level.OK, "swap off")
        if not swap_lines
        else DoctorCheck(
            "kubelet.swap",
            Level.WARN,
            f"{len(swap_lines)} swap area(s) in use",
            "the kubelet runs with failSwapOn off, but pods' memory limits then hold less",
            "swapoff -a",
        )
    )
    if gpu:
        checks.append(
            DoctorCheck(
                "kubelet.nvml",
                Level.OK,
                f"NVML: {facts.nvml.gpus} GPU(s), driver {facts.nvml.driver}",
            )
            if not facts.nvml.error and facts.nvml.gpus > 0
            else DoctorCheck(
                "kubelet.nvml",
                Level.FAIL,
                facts.nvml.error or "NVML sees no GPU",
                "the NVIDIA device plugin enumerates GPUs through NVML (the driver's library)",
                "install the NVIDIA driver, or run the gpu node as runtime: kwok",
            )
        )
    return checks


def kubelet_host_checks(platform: Platform) -> list[DoctorCheck]:
    """The checks for ``platform``'s kubelet nodes on this host (NVML with a gpu node)."""
    gpu = platform.has_kubelet_gpu_node
    return kubelet_checks(collect_kubelet_facts(gpu=gpu), gpu=gpu)
