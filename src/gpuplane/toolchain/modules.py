"""Wrapper Go modules for a Kubernetes release other than the pinned one.

The pinned release builds straight from tools/kube. Another release gets a copy of that
module in the cache with its version lines rewritten (``go mod edit``) and its graph
resolved (``go mod tidy``), which also fixes the etcd version k8s.io/apiserver requires.
"""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

from gpuplane.toolchain.gocmd import run_go
from gpuplane.toolchain.pins import (
    ETCD_MODULE,
    KUBERNETES_MODULE,
    Pins,
    required_version,
    staging_version,
)


def staging_modules(go_mod_text: str) -> list[str]:
    """The k8s.io staging modules a wrapper go.mod replaces."""
    names = []
    for line in go_mod_text.splitlines():
        parts = line.split()
        if len(parts) == 4 and parts[1] == "=>" and parts[0].startswith("k8s.io/"):
            names.append(parts[0])
    return names


def kube_module_dir(tools: Path, cache: Path, pins: Pins, kubernetes_version: str) -> Path:
    """The module directory that builds ``kubernetes_version``."""
    if kubernetes_version == pins.kubernetes:
        return tools / "kube"
    return cache / "modules" / f"kube-{kubernetes_version}"


def pins_for(tools: Path, cache: Path, pins: Pins, kubernetes_version: str | None) -> Pins:
    """The pins of a cluster at ``kubernetes_version``; etcd read from its prepared module.

    Without a prepared module the etcd version is not known yet (``unresolved``).
    """
    if kubernetes_version is None or kubernetes_version == pins.kubernetes:
        return pins
    go_mod = kube_module_dir(tools, cache, pins, kubernetes_version) / "go.mod"
    etcd = (
        required_version(go_mod.read_text(encoding="utf-8"), ETCD_MODULE)
        if go_mod.is_file()
        else None
    )
    return dataclasses.replace(pins, kubernetes=kubernetes_version, etcd=etcd or "unresolved")


def prepare_kube_module(tools: Path, cache: Path, pins: Pins, kubernetes_version: str) -> Path:
    """Make (once) the wrapper module for ``kubernetes_version`` and return its directory."""
    target = kube_module_dir(tools, cache, pins, kubernetes_version)
    if target == tools / "kube" or (target / "go.sum").is_file():
        return target
    work = target.with_name(target.name + ".partial")
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    source_mod = (tools / "kube" / "go.mod").read_text(encoding="utf-8")
    (work / "go.mod").write_text(source_mod, encoding="utf-8")
    staging = staging_version(kubernetes_version)
    edits = [f"-require={KUBERNETES_MODULE}@{kubernetes_version}", f"-droprequire={ETCD_MODULE}"]
    edits += [f"-replace={name}={name}@{staging}" for name in staging_modules(source_mod)]
    run_go(["mod", "edit", *edits], cwd=work, timeout=60)
    run_go(["mod", "tidy"], cwd=work, timeout=900)
    shutil.rmtree(target, ignore_errors=True)
    work.rename(target)
    return target
