"""Collect what the checks need from the host by running its tools (argument lists,
timeouts); the result is plain data so the checks themselves stay pure."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class CommandOutput:
    found: bool
    code: int = 0
    stdout: str = ""
    stderr: str = ""

    @property
    def ok(self) -> bool:
        return self.found and self.code == 0

    @property
    def text(self) -> str:
        return (self.stdout + "\n" + self.stderr).strip()


Runner = Callable[[list[str]], CommandOutput]


def probe_command(argv: list[str], timeout: float = 20.0) -> CommandOutput:
    """Run a probe of the host (``nvidia-smi``, ``docker info``): unlike
    ``commands.run_command`` it never raises, since a missing program or a failure is
    itself the fact ``doctor`` reports."""
    binary = shutil.which(argv[0])
    if binary is None:
        return CommandOutput(found=False)
    try:
        result = subprocess.run(
            [binary, *argv[1:]], capture_output=True, text=True, timeout=timeout, check=False
        )
    except subprocess.TimeoutExpired:
        return CommandOutput(True, 124, "", f"{argv[0]} did not answer within {timeout:.0f}s")
    return CommandOutput(True, result.returncode, result.stdout, result.stderr)


@dataclass(frozen=True)
class HostFacts:
    nvidia_smi: CommandOutput
    docker_info: CommandOutput
    nvidia_ctk: CommandOutput
    k3d: CommandOutput
    kubectl: CommandOutput
    terraform: CommandOutput
    proc_version: str
    cgroup_v2: bool


def collect_facts(run: Runner = probe_command, root: Path = Path("/")) -> HostFacts:
    terraform = run(["terraform", "version", "-json"])
    if not terraform.found:
        terraform = run(["tofu", "version", "-json"])
    proc_version = root / "proc" / "version"
    return HostFacts(
        nvidia_smi=run(
            ["nvidia-smi", "--query-gpu=name,driver_version,memory.total", "--format=csv,noheader"]
        ),
        docker_info=run(["docker", "info", "--format", "{{json .}}"]),
        nvidia_ctk=run(["nvidia-ctk", "--version"]),
        k3d=run(["k3d", "version"]),
        kubectl=run(["kubectl", "version", "--client", "-o", "json"]),
        terraform=terraform,
        proc_version=proc_version.read_text() if proc_version.is_file() else "",
        cgroup_v2=(root / "sys" / "fs" / "cgroup" / "cgroup.controllers").is_file(),
    )
