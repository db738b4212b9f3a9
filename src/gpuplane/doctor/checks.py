"""Doctor's verdicts from the host facts (pure): each failure with its known cause and fix."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

from gpuplane.doctor.host import CommandOutput, HostFacts
from gpuplane.doctor.parsers import (
    Version,
    format_version,
    is_wsl,
    kubectl_client_version,
    parse_docker_info,
    parse_nvidia_smi_query,
    parse_version,
    terraform_version,
)

MIN_DRIVER: Version = (525, 60)  # CUDA 12.x images need at least this driver
MIN_K3D: Version = (5, 6)  # k3d.io/v1alpha5 config files
MIN_KUBECTL: Version = (1, 33)  # one minor of skew around the pinned v1.34
MIN_TERRAFORM: Version = (1, 5)  # terraform_data and validation blocks as used here
CTK_KNOWN_ISSUE: Version = (1, 18)


class Level(StrEnum):
    OK = "ok"
    WARN = "warn"
    FAIL = "fail"


@dataclass(frozen=True)
class DoctorCheck:
    id: str
    level: Level
    summary: str
    cause: str = ""
    fix: str = ""


def evaluate(facts: HostFacts) -> list[DoctorCheck]:
    docker = _docker_checks(facts)
    return [
        _driver(facts.nvidia_smi, facts.proc_version),
        *docker,
        _toolkit(facts.nvidia_ctk),
        _cgroup(facts),
        _wsl(facts.proc_version),
        _tool_version("k3d", facts.k3d, parse_version, MIN_K3D, "install k3d >= 5.6"),
        _tool_version(
            "kubectl",
            facts.kubectl,
            kubectl_client_version,
            MIN_KUBECTL,
            "install kubectl within one minor of v1.34 (apt-get install kubernetes-client)",
            # Outside the supported skew kubectl still works for get/apply: a warning.
            too_old=Level.WARN,
        ),
        _tool_version(
            "terraform",
            facts.terraform,
            terraform_version,
            MIN_TERRAFORM,
            "install Terraform >= 1.5 or OpenTofu (`make infra-up` builds OpenTofu offline)",
        ),
    ]


def _driver(smi: CommandOutput, proc_version: str) -> DoctorCheck:
    if not smi.found:
        wsl = is_wsl(proc_version)
        return DoctorCheck(
            "nvidia.driver",
            Level.FAIL,
            "nvidia-smi not found",
            "no NVIDIA driver is installed on this host",
            "install the Windows NVIDIA driver (WSL2 gets nvidia-smi from it)"
            if wsl
            else "install the NVIDIA driver for your distribution (e.g. apt-get install "
            "nvidia-driver), then reboot",
        )
    if not smi.ok:
        if "couldn't communicate with the NVIDIA driver" in smi.text:
            cause = "the kernel module is not loaded (new kernel without DKMS rebuild, Secure Boot)"
            fix = (
                "rebuild/reinstall the driver for the running kernel or sign it for "
                "Secure Boot, then reboot"
            )
        else:
            cause, fix = (
                smi.text or f"exit code {smi.code}",
                "run nvidia-smi by hand and fix what it says",
            )
        return DoctorCheck("nvidia.driver", Level.FAIL, "nvidia-smi failed", cause, fix)
    gpus = parse_nvidia_smi_query(smi.stdout)
    if not gpus:
        return DoctorCheck(
            "nvidia.driver",
            Level.FAIL,
            "nvidia-smi lists no GPU",
            "no GPU visible",
            "check the card and the driver",
        )
    driver = parse_version(gpus[0].driver) or ()
    names = ", ".join(f"{gpu.name} ({gpu.memory_mib} MiB)" for gpu in gpus)
    if driver < MIN_DRIVER:
        return DoctorCheck(
            "nvidia.driver",
            Level.FAIL,
            f"driver {gpus[0].driver} is older than {format_version(MIN_DRIVER)}",
            "CUDA 12 images (the smoke test, the k3s-cuda node image) need a newer driver",
            "upgrade the NVIDIA driver",
        )
    return DoctorCheck("nvidia.driver", Level.OK, f"driver {gpus[0].driver}; {names}")


def _docker_checks(facts: HostFacts) -> list[DoctorCheck]:
    output = facts.docker_info
    if not output.found:
        return [
            DoctorCheck(
                "docker.engine",
                Level.FAIL,
                "docker not found",
                "k3d runs k3s nodes as Docker containers",
                "install Docker Engine (apt-get install docker.io) or use --backend local",
            )
        ]
    info = parse_docker_info(output.stdout)
    if info.server_version is None:
        # With the daemon down, docker still prints its client half as JSON on stdout;
        # the reason is on stderr.
        text = output.stderr.strip() or info.error or "no answer"
        if "permission denied" in text.lower():
            cause, fix = (
                "your user may not use the Docker socket",
                "add yourself to the docker group (newgrp docker)",
            )
        else:
            cause, fix = (
                "the Docker daemon is not running or not reachable",
                "start it: sudo systemctl start docker",
            )
        return [
            DoctorCheck(
                "docker.engine", Level.FAIL, f"Docker engine unreachable: {text}", cause, fix
            )
        ]
    checks = [DoctorCheck("docker.engine", Level.OK, f"Docker Engine {info.server_version}")]
    if "nvidia" in info.runtimes or info.cdi_spec_dirs:
        checks.append(
            DoctorCheck(
                "docker.gpu",
                Level.OK,
                f"runtimes: {', '.join(info.runtimes)}; "
                f"CDI spec dirs: {', '.join(info.cdi_spec_dirs) or '-'}",
            )
        )
    else:
        checks.append(
            DoctorCheck(
                "docker.gpu",
                Level.FAIL,
                "Docker has no nvidia runtime and no CDI spec directories",
                "the NVIDIA Container Toolkit is missing or not configured for Docker",
                "install nvidia-container-toolkit, then: sudo nvidia-ctk runtime configure "
                "--runtime=docker && sudo systemctl restart docker",
            )
        )
    checks.append(
        DoctorCheck(
            "docker.rootless",
            Level.WARN,
            "rootless Docker",
            "rootless Docker cannot hand the GPU devices to k3d node containers reliably",
            "use the rootful Docker daemon for the k3d backend",
        )
        if info.rootless
        else DoctorCheck("docker.rootless", Level.OK, "rootful Docker")
    )
    return checks


def _toolkit(ctk: CommandOutput) -> DoctorCheck:
    if not ctk.ok:
        return DoctorCheck(
            "nvidia.container-toolkit",
            Level.FAIL,
            "nvidia-ctk not found" if not ctk.found else f"nvidia-ctk failed: {ctk.text}",
            "the NVIDIA Container Toolkit gives containers (and k3s in them) the GPU",
            "install nvidia-container-toolkit from NVIDIA's package repository",
        )
    version = parse_version(ctk.stdout) or ()
    shown = format_version(version) if version else ctk.stdout.strip()
    if version >= CTK_KNOWN_ISSUE:
        return DoctorCheck(
            "nvidia.container-toolkit",
            Level.WARN,
            f"NVIDIA Container Toolkit {shown}",
            "toolkit 1.18 changed how devices are injected and users report broken "
            "kind/nvkind GPU setups with it",
            "if the device plugin finds no GPU, pin the toolkit to 1.17.x",
        )
    return DoctorCheck("nvidia.container-toolkit", Level.OK, f"NVIDIA Container Toolkit {shown}")


def _cgroup(facts: HostFacts) -> DoctorCheck:
    if facts.cgroup_v2:
        return DoctorCheck("host.cgroup", Level.OK, "cgroup v2")
    return DoctorCheck(
        "host.cgroup",
        Level.WARN,
        "cgroup v1 (or hybrid)",
        "Kubernetes has put cgroup v1 into maintenance mode; new k3s releases may refuse it",
        "boot with systemd.unified_cgroup_hierarchy=1",
    )


def _wsl(proc_version: str) -> DoctorCheck:
    if not is_wsl(proc_version):
        return DoctorCheck("host.wsl2", Level.OK, "not WSL2")
    return DoctorCheck(
        "host.wsl2",
        Level.WARN,
        "WSL2",
        "on WSL2 the GPU is /dev/dxg and NVML is partial: older device plugins report "
        "'No devices found' (NVIDIA/k8s-device-plugin#332, #646)",
        "use CDI (nvidia-ctk cdi generate) and a recent device plugin; see docs",
    )


def _tool_version(
    name: str,
    output: CommandOutput,
    parse: Callable[[str], Version | None],
    minimum: Version,
    fix: str,
    *,
    too_old: Level = Level.FAIL,
) -> DoctorCheck:
    check_id = f"tool.{name}"
    if not output.found:
        return DoctorCheck(
            check_id, Level.FAIL, f"{name} not found", f"{name} is needed by the k3d backend", fix
        )
    version = parse(output.stdout)
    if not version:
        return DoctorCheck(
            check_id, Level.FAIL, f"cannot read the {name} version", output.text[:200], fix
        )
    if version < minimum:
        return DoctorCheck(
            check_id,
            too_old,
            f"{name} {format_version(version)} is older than {format_version(minimum)}",
            f"gpuplane is tested with {name} >= {format_version(minimum)}",
            fix,
        )
    return DoctorCheck(check_id, Level.OK, f"{name} {format_version(version)}")
