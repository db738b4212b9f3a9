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
    CONTAINERD = "containerd"
    RUNC = "runc"
    CNI = "cni"
    NVIDIA_TOOLKIT = "nvidia-toolkit"
    DEVICE_PLUGIN = "device-plugin"
    KUBECTL_PROVIDER = "terraform-provider-kubectl"
    ARGOCD = "argocd"
    PROMETHEUS_ADAPTER = "prometheus-adapter"


@dataclass(frozen=True)
class Component:
    name: str
    package: str
    module: WrapperModule
    version: str
    # Built only on demand: OpenTofu, for hosts without a terraform binary; the node
    # components, for platforms with a kubelet node.
    optional: bool = False
    # Binaries that must sit in one directory share a slot (containerd finds its shim
    # on PATH; containerd's CNI bin_dirs holds every plugin).
    slot: str = ""

    def path(self, cache: Path) -> Path:
        return cache / "bin" / f"{self.slot or self.name}-{self.version}" / self.name

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
        # The Terraform provider infra/platform uses, laid out as a filesystem mirror
        # (toolchain.terraform); built on first use of the Terraform flow.
        Component(
            "terraform-provider-kubectl",
            "github.com/gavinbunney/terraform-provider-kubectl",
            WrapperModule.KUBECTL_PROVIDER,
            pins.kubectl_provider,
            optional=True,
        ),
        # GitOps on the local backend: every Argo CD component in one multi-call binary
        # (ARGOCD_BINARY_NAME picks one); built on first use of `gpuplane gitops`.
        Component(
            "argocd",
            "github.com/argoproj/argo-cd/v2/cmd",
            WrapperModule.ARGOCD,
            pins.argocd,
            optional=True,
        ),
        # The custom metrics API behind the HPA (Prometheus queries as Kubernetes metrics);
        # built on first use of `gpuplane autoscale`.
        Component(
            "prometheus-adapter",
            "sigs.k8s.io/prometheus-adapter/cmd/adapter",
            WrapperModule.PROMETHEUS_ADAPTER,
            pins.prometheus_adapter,
            optional=True,
        ),
        *node_components(pins),
        *gpu_node_components(pins),
        # etcd and the Kubernetes components in one binary (symlinks pick the component):
        # built only to pack a control plane and kubelet node for a host without Go.
        Component(
            "kube-multicall", "gpuplane.io/tools/kube/multicall", WrapperModule.KUBE, kube, True
        ),
    )


def gpu_node_components(pins: Pins) -> tuple[Component, ...]:
    """What a kubelet gpu node adds: the NVIDIA Container Toolkit's CDI tools and its
    runtime (CDI mode), and the device plugin (whose image the DaemonSet runs)."""
    toolkit = "github.com/NVIDIA/nvidia-container-toolkit/cmd/"
    return (
        *(
            Component(
                name,
                toolkit + name,
                WrapperModule.NVIDIA_TOOLKIT,
                pins.nvidia_toolkit,
                True,
                slot="nvidia-toolkit",
            )
            for name in ("nvidia-ctk", "nvidia-cdi-hook", "nvidia-container-runtime")
        ),
        Component(
            "nvidia-device-plugin",
            "github.com/NVIDIA/k8s-device-plugin/cmd/nvidia-device-plugin",
            WrapperModule.DEVICE_PLUGIN,
            pins.device_plugin,
            True,
        ),
    )


def node_components(pins: Pins) -> tuple[Component, ...]:
    """What a kubelet node runs: the kubelet, containerd with its shim and ctr, runc and
    the CNI plugins of the pod network (bridge, host-local IPAM, loopback)."""
    containerd = "github.com/containerd/containerd/v2/cmd/"
    cni = "github.com/containernetworking/plugins/plugins/"
    return (
        Component(
            "kubelet", "k8s.io/kubernetes/cmd/kubelet", WrapperModule.KUBE, pins.kubernetes, True
        ),
        *(
            Component(
                name,
                containerd + name,
                WrapperModule.CONTAINERD,
                pins.containerd,
                True,
                slot="containerd",
            )
            for name in ("containerd", "containerd-shim-runc-v2", "ctr")
        ),
        Component("runc", "github.com/opencontainers/runc", WrapperModule.RUNC, pins.runc, True),
        *(
            Component(
                name, cni + kind + "/" + name, WrapperModule.CNI, pins.cni, True, slot="cni-plugins"
            )
            for kind, name in (("main", "bridge"), ("ipam", "host-local"), ("main", "loopback"))
        ),
    )


def component(pins: Pins, name: str) -> Component:
    """The component called ``name`` (a KeyError names an unknown one)."""
    for candidate in components(pins):
        if candidate.name == name:
            return candidate
    raise KeyError(f"no toolchain component {name!r}")
