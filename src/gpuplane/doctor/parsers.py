"""Parse what host tools print (pure): nvidia-smi, docker info, version strings."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

Version = tuple[int, ...]


@dataclass(frozen=True)
class Gpu:
    name: str
    driver: str
    memory_mib: int | None


def parse_version(text: str) -> Version | None:
    """The first dotted version in ``text``: 'k3d version v5.7.4' -> (5, 7, 4)."""
    match = re.search(r"v?(\d+)\.(\d+)(?:\.(\d+))?", text)
    if match is None:
        return None
    return tuple(int(part) for part in match.groups() if part is not None)


def format_version(version: Version) -> str:
    return ".".join(str(part) for part in version)


def parse_nvidia_smi_query(output: str) -> list[Gpu]:
    """``nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader``."""
    gpus = []
    for line in output.strip().splitlines():
        parts = [part.strip() for part in line.split(",")]
        if len(parts) < 2 or not parts[0]:
            continue
        memory = re.match(r"(\d+)\s*MiB", parts[2]) if len(parts) > 2 else None
        gpus.append(Gpu(parts[0], parts[1], int(memory.group(1)) if memory else None))
    return gpus


@dataclass(frozen=True)
class DockerInfo:
    server_version: str | None
    runtimes: tuple[str, ...]
    default_runtime: str | None
    cgroup_version: str | None
    rootless: bool
    cdi_spec_dirs: tuple[str, ...]
    error: str | None


def parse_docker_info(output: str) -> DockerInfo:
    """``docker info --format '{{json .}}'``; the server part may be missing (daemon down)."""
    try:
        data = json.loads(output)
    except ValueError:
        return DockerInfo(None, (), None, None, False, (), output.strip() or "no output")
    if not isinstance(data, dict):
        return DockerInfo(None, (), None, None, False, (), "unexpected docker info output")
    errors = data.get("ServerErrors") or []
    security = data.get("SecurityOptions") or []
    return DockerInfo(
        server_version=data.get("ServerVersion") or None,
        runtimes=tuple(sorted((data.get("Runtimes") or {}).keys())),
        default_runtime=data.get("DefaultRuntime"),
        cgroup_version=str(data["CgroupVersion"]) if data.get("CgroupVersion") else None,
        rootless=any("rootless" in str(option) for option in security),
        cdi_spec_dirs=tuple(data.get("CDISpecDirs") or ()),
        error="; ".join(str(error) for error in errors) or None,
    )


def is_wsl(proc_version: str) -> bool:
    return "microsoft" in proc_version.lower()


def kubectl_client_version(output: str) -> Version | None:
    """``kubectl version --client -o json``."""
    try:
        text = json.loads(output)["clientVersion"]["gitVersion"]
    except (ValueError, KeyError, TypeError):
        return parse_version(output)
    return parse_version(str(text))


def terraform_version(output: str) -> Version | None:
    """``terraform version -json`` (or ``tofu version -json``)."""
    try:
        text = json.loads(output)["terraform_version"]
    except (ValueError, KeyError, TypeError):
        return parse_version(output)
    return parse_version(str(text))
