"""Stage the cache a GPU host without Go needs (scripts/e2e-gpu.sh pack): every binary the
local backend runs for a platform whose gpu node is a kubelet node, built here, and the
platform's images. etcd and the Kubernetes components are one multi-call binary, linked
once per component name, so they fit the GPU machine's transfers. It also writes
wheels/requirements.txt: what the CLI needs on the GPU host (pyproject's dependencies, the
activator's extra, pytest), read from pyproject.toml so that a new dependency travels
without anyone editing the pack (e2e-gpu.sh downloads and installs exactly that list).

Usage: .venv/bin/python scripts/e2e_gpu_pack.py STAGE_DIR
"""

from __future__ import annotations

import os
import shutil
import sys
import tomllib
from pathlib import Path

import yaml

from gpuplane.backends.local import LocalBackend
from gpuplane.backends.local.kubelet.fleet import needed_components
from gpuplane.toolchain import cache_dir, component, ensure_built, read_pins, tools_dir
from gpuplane.topology.loader import parse_platform

REPO = Path(__file__).resolve().parents[1]
MULTICALL_NAMES = (
    "etcd",
    "kube-apiserver",
    "kube-controller-manager",
    "kube-scheduler",
    "kubelet",
    "kubectl",
)


# Beside pyproject's own dependencies: the extras and dev tools the e2e run uses there.
HOST_EXTRAS = ("activator",)
HOST_DEV_TOOLS = ("pytest", "pytest-timeout")


def cli_requirements() -> list[str]:
    """The requirement lines the GPU host installs the CLI and the e2e suite from."""
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    optional = project["optional-dependencies"]
    lines = list(project["dependencies"])
    for extra in HOST_EXTRAS:
        lines += optional[extra]
    lines += [r for r in optional["dev"] if r.split(">")[0].split("=")[0] in HOST_DEV_TOOLS]
    return lines


def gpu_platform() -> str:
    document = yaml.safe_load((REPO / "platform.yaml").read_text())
    for node in document["spec"]["nodes"]:
        if node["role"] == "gpu":
            node["runtime"] = "kubelet"
    return yaml.safe_dump(document)


def main() -> None:
    stage = Path(sys.argv[1])
    tools, cache, pins = tools_dir(), cache_dir(), read_pins()
    platform = parse_platform(gpu_platform(), Path("e2e-gpu platform"))
    # The Prometheus adapter is built on demand (`gpuplane autoscale up`); the e2e run's HPA
    # test needs it on a host without Go.
    names = (*needed_components(platform, pins), "kube-multicall", "prometheus-adapter")
    binaries = ensure_built(tools, cache, pins, only=names)
    images = LocalBackend(cache=cache).build_images(platform)
    multicall = component(pins, "kube-multicall")
    for name, path in binaries.items():
        target = stage / "cache" / path.relative_to(cache)
        target.parent.mkdir(parents=True, exist_ok=True)
        if name in MULTICALL_NAMES:
            # The slot holds a link to the multi-call binary, named for its component.
            relative = os.path.relpath(multicall.path(stage / "cache"), target.parent)
            target.symlink_to(relative)
        else:
            shutil.copy2(path, target)
    (stage / "cache" / "images").mkdir(parents=True, exist_ok=True)
    for image in images:
        shutil.copy2(image.file, stage / "cache" / "images" / image.file.name)
    (stage / "wheels").mkdir(parents=True, exist_ok=True)
    (stage / "wheels" / "requirements.txt").write_text("\n".join(cli_requirements()) + "\n")


if __name__ == "__main__":
    main()
