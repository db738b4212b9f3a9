"""The upstream binaries gpuplane runs, and where each one lives in the cache."""

from __future__ import annotations

import os
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from gpuplane.toolchain.pins import Pins


class WrapperModule(StrEnum):
    """The wrapper Go module under tools/ that builds a component."""

    KUBE = "kube"
    KWOK = "kwok"
    HELM = "helm"
    TOFU = "tofu"


@dataclass(frozen=True)
class Component:
    name: str
    package: str
    module: WrapperModule
    version: str
    # Built only on demand: OpenTofu, for hosts without a terraform binary.
    optional: bool = False

    def path(self, cache: Path) -> Path:
        return cache / "bin" / f"{self.name}-{self.version}" / self.name

    def is_built(self, cache: Path) -> bool:
        binary = self.path(cache)
        return binary.is_file() and os.access(binary, os.X_OK)


def cache_dir(env: dict[str, str] | None = None) -> Path:
    """``GPUPLANE_CACHE`` if set, else ``~/.cache/gpuplane``: only ever an optimisation."""
    environ = os.environ if env is None else env
    override = environ.get("GPUPLANE_CACHE")
    return Path(override) if override else Path.home() / ".cache" / "gpuplane"


def components(pins: Pins) -> tuple[Component, ...]:
    """Every component at the versions of ``pins``.

    etcd follows the Kubernetes release: it is the version k8s.io/apiserver requires,
    which the wrapper module's go.mod records.
    """
    kube = pins.kubernetes
    return (
        Component("etcd", "go.etcd.io/etcd/server/v3", WrapperModule.KUBE, pins.etcd),
        Component(
            "kube-apiserver", "k8s.io/kubernetes/cmd/kube-apiserver", WrapperModule.KUBE, kube
        ),
        Component(
            "kube-controller-manager",
            "k8s.io/kubernetes/cmd/kube-controller-manager",
            WrapperModule.KUBE,
            kube,
        ),
        Component(
            "kube-scheduler", "k8s.io/kubernetes/cmd/kube-scheduler", WrapperModule.KUBE, kube
        ),
        # kubectl of the same release: the manifest checks' `apply --dry-run=server`.
        Component("kubectl", "k8s.io/kubernetes/cmd/kubectl", WrapperModule.KUBE, kube),
        Component("kwok", "sigs.k8s.io/kwok/cmd/kwok", WrapperModule.KWOK, pins.kwok),
        Component("kwokctl", "sigs.k8s.io/kwok/cmd/kwokctl", WrapperModule.KWOK, pins.kwok),
        Component("helm", "helm.sh/helm/v3/cmd/helm", WrapperModule.HELM, pins.helm),
        Component(
            "tofu",
            "github.com/opentofu/opentofu/cmd/tofu",
            WrapperModule.TOFU,
            pins.tofu,
            optional=True,
        ),
    )


def component(pins: Pins, name: str) -> Component:
    """The component called ``name`` (a KeyError names an unknown one)."""
    for candidate in components(pins):
        if candidate.name == name:
            return candidate
    raise KeyError(f"no toolchain component {name!r}")
