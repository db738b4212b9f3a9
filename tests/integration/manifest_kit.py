"""The upstream binaries the manifest tests drive: kubectl and helm from the toolchain."""

from __future__ import annotations

import subprocess
from pathlib import Path

from gpuplane.toolchain import cache_dir, component, read_pins
from gpuplane.toolchain.helm import helm_template as render
from tests.integration.conftest import REPO


def binary(name: str, env: dict[str, str]) -> Path:
    path = component(read_pins(), name).path(cache_dir(env))
    assert path.is_file(), f"{name} is not built: make toolchain"
    return path


def run(argv: list[str], stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        argv, input=stdin, capture_output=True, text=True, timeout=300, check=False, cwd=REPO
    )


def helm_template(
    env: dict[str, str], chart: str, namespace: str, *sets: str, values_file: str = ""
) -> str:
    """``chart`` rendered by the product's own helm call; ``sets`` as KEY=VALUE, and a
    values file relative to the repository."""
    values = dict(item.split("=", 1) for item in sets)
    return render(
        binary("helm", env),
        REPO / chart,
        release="release",
        namespace=namespace,
        kube_version=read_pins().kubernetes,
        values=values,
        values_files=(REPO / values_file,) if values_file else (),
    )


def kubectl(
    env: dict[str, str], kubeconfig: Path, *args: str, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    return run([str(binary("kubectl", env)), "--kubeconfig", str(kubeconfig), *args], stdin)
