"""Every wrapper module's recipe resolves its packages with the environment its build uses
(the NVIDIA toolkit's cgo packages vanish from `go list` with cgo off, which broke the GPU
pack on an empty cache once), and the whole GPU pack (every binary and image a GPU host
without Go runs) builds into an EMPTY gpuplane cache: what `scripts/e2e-gpu.sh pack` does
on a fresh machine. Go's own build cache may be warm; the cache under test is ours."""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from gpuplane.toolchain import cache_dir, read_pins, tools_dir
from gpuplane.toolchain.build import build_recipe
from gpuplane.toolchain.components import WrapperModule, components
from gpuplane.toolchain.gocmd import check_go

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("module", list(WrapperModule))
def test_every_recipe_lists_its_packages_with_its_own_environment(module: WrapperModule) -> None:
    pins = read_pins()
    packages = [c.package for c in components(pins) if c.module is module]
    recipe = build_recipe(module, tools_dir(), cache_dir(), pins)
    listed = recipe.dependencies(packages)
    assert set(packages) <= set(listed)
    if recipe.cgo:
        assert recipe.env()["CGO_ENABLED"] == "1"


def test_the_nvidia_toolkit_needs_cgo_to_be_listed() -> None:
    """The failure this guards against, reproduced: without cgo the list fails."""
    pins = read_pins()
    recipe = build_recipe(WrapperModule.NVIDIA_TOOLKIT, tools_dir(), cache_dir(), pins)
    packages = [c.package for c in components(pins) if c.module is WrapperModule.NVIDIA_TOOLKIT]
    env = {**recipe.env(), "CGO_ENABLED": "0"}
    result = subprocess.run(
        [check_go(), "list", "-deps", *packages],
        cwd=recipe.module_dir,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert result.returncode != 0
    assert "build constraints exclude all Go files" in result.stderr


def test_the_gpu_pack_builds_from_an_empty_cache(tmp_path: Path) -> None:
    cache, stage = tmp_path / "cache", tmp_path / "stage"
    env = {**os.environ, "GPUPLANE_CACHE": str(cache)}
    result = subprocess.run(
        [sys.executable, str(REPO / "scripts/e2e_gpu_pack.py"), str(stage)],
        env=env,
        capture_output=True,
        text=True,
        timeout=3000,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    binaries = [p for p in (stage / "cache" / "bin").rglob("*") if not p.is_dir()]
    names = {p.name for p in binaries}
    # The device plugin travels as its image (below), the rest as binaries.
    for wanted in ("kubelet", "containerd", "runc", "nvidia-ctk", "nvidia-cdi-hook", "etcd"):
        assert wanted in names, sorted(names)
    for binary in binaries:
        assert os.access(binary.resolve(), os.X_OK), binary
    images = {p.name for p in (stage / "cache" / "images").glob("*.oci.tar")}
    assert any(name.startswith("device-plugin-") for name in images), images
    # The CLI's wheels on the GPU host: every dependency pyproject.toml declares, so a new
    # one cannot be missing there (e2e-gpu.sh downloads and installs this very list).
    listed = (stage / "wheels" / "requirements.txt").read_text().split()
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    assert set(project["dependencies"]) <= set(listed)
    names = {line.split(">")[0].split("=")[0] for line in listed}
    assert {"pytest", "pytest-timeout", "uvloop"} <= names
