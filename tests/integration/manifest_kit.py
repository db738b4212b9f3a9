"""The upstream binaries the manifest tests drive: kubectl and helm from the toolchain."""

from __future__ import annotations

import subprocess
from pathlib import Path

from gpuplane.toolchain import cache_dir, components, read_pins
from tests.integration.conftest import REPO


def binary(name: str, env: dict[str, str]) -> Path:
    component = next(c for c in components(read_pins()) if c.name == name)
    path = component.path(cache_dir(env))
    assert path.is_file(), f"{name} is not built: make toolchain"
    return path


def run(argv: list[str], stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        argv, input=stdin, capture_output=True, text=True, timeout=300, check=False, cwd=REPO
    )


def helm_template(env: dict[str, str], chart: str, namespace: str, *sets: str) -> str:
    argv = [
        str(binary("helm", env)), "template", "release", str(REPO / chart),
        "--namespace", namespace, "--kube-version", read_pins().kubernetes,
    ]  # fmt: skip
    for value in sets:
        argv += ["--set", value]
    result = run(argv)
    assert result.returncode == 0, result.stderr
    return result.stdout


def kubectl(
    env: dict[str, str], kubeconfig: Path, *args: str, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    return run([str(binary("kubectl", env)), "--kubeconfig", str(kubeconfig), *args], stdin)
