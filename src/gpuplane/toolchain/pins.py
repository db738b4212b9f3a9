"""The pinned upstream versions, read from the wrapper Go modules under ``tools/``.

Those go.mod files are the one place versions are pinned: Go builds from them and
this module reads them, so the two can never disagree.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from gpuplane.errors import PrerequisiteError

KUBERNETES_MODULE = "k8s.io/kubernetes"
ETCD_MODULE = "go.etcd.io/etcd/server/v3"
KWOK_MODULE = "sigs.k8s.io/kwok"
HELM_MODULE = "helm.sh/helm/v3"
TOFU_MODULE = "github.com/opentofu/opentofu"
CONTAINERD_MODULE = "github.com/containerd/containerd/v2"
RUNC_MODULE = "github.com/opencontainers/runc"
CNI_MODULE = "github.com/containernetworking/plugins"
NVIDIA_TOOLKIT_MODULE = "github.com/NVIDIA/nvidia-container-toolkit"
DEVICE_PLUGIN_MODULE = "github.com/NVIDIA/k8s-device-plugin"
KUBECTL_PROVIDER_MODULE = "github.com/gavinbunney/terraform-provider-kubectl"
ARGOCD_MODULE = "github.com/argoproj/argo-cd/v2"
PROMETHEUS_ADAPTER_MODULE = "sigs.k8s.io/prometheus-adapter"


@dataclass(frozen=True)
class Pins:
    kubernetes: str
    etcd: str
    kwok: str
    helm: str
    tofu: str
    containerd: str
    runc: str
    cni: str
    nvidia_toolkit: str
    device_plugin: str
    kubectl_provider: str
    argocd: str
    prometheus_adapter: str


def tools_dir() -> Path:
    """Where the wrapper modules live: ``GPUPLANE_TOOLS_DIR`` or the source checkout."""
    override = os.environ.get("GPUPLANE_TOOLS_DIR")
    if override:
        return Path(override)
    # src/gpuplane/toolchain/pins.py -> repository root
    candidate = Path(__file__).resolve().parents[3] / "tools"
    if not (candidate / "kube" / "go.mod").is_file():
        raise PrerequisiteError(
            f"cannot find the wrapper Go modules (looked in {candidate}); "
            "run gpuplane from its source checkout or set GPUPLANE_TOOLS_DIR"
        )
    return candidate


def repo_root() -> Path:
    """The source checkout (manifests under charts/, deploy/ and apps/ live there)."""
    return tools_dir().parent


def required_version(go_mod_text: str, module: str) -> str | None:
    """The version ``go_mod_text`` requires of ``module`` (single or block form)."""
    pattern = re.compile(rf"^\s*(?:require\s+)?{re.escape(module)}\s+(v\S+)", re.MULTILINE)
    match = pattern.search(go_mod_text)
    return match.group(1) if match else None


def read_pins(tools: Path | None = None) -> Pins:
    root = tools or tools_dir()
    kube_mod = (root / "kube" / "go.mod").read_text(encoding="utf-8")
    kwok_mod = (root / "kwok" / "go.mod").read_text(encoding="utf-8")
    helm_mod = (root / "helm" / "go.mod").read_text(encoding="utf-8")
    tofu_mod = (root / "tofu" / "go.mod").read_text(encoding="utf-8")
    node_mods = {
        module: (root / directory / "go.mod").read_text(encoding="utf-8")
        for module, directory in (
            (CONTAINERD_MODULE, "containerd"),
            (RUNC_MODULE, "runc"),
            (CNI_MODULE, "cni"),
            (NVIDIA_TOOLKIT_MODULE, "nvidia-toolkit"),
            (DEVICE_PLUGIN_MODULE, "device-plugin"),
            (KUBECTL_PROVIDER_MODULE, "terraform-provider-kubectl"),
            (ARGOCD_MODULE, "argocd"),
            (PROMETHEUS_ADAPTER_MODULE, "prometheus-adapter"),
        )
    }
    versions = {
        KUBERNETES_MODULE: required_version(kube_mod, KUBERNETES_MODULE),
        ETCD_MODULE: required_version(kube_mod, ETCD_MODULE),
        KWOK_MODULE: required_version(kwok_mod, KWOK_MODULE),
        HELM_MODULE: required_version(helm_mod, HELM_MODULE),
        TOFU_MODULE: required_version(tofu_mod, TOFU_MODULE),
        **{module: required_version(text, module) for module, text in node_mods.items()},
    }
    missing = [module for module, version in versions.items() if version is None]
    if missing:
        raise PrerequisiteError(f"tools/*/go.mod pin no version for {', '.join(missing)}")
    return Pins(
        kubernetes=str(versions[KUBERNETES_MODULE]),
        etcd=str(versions[ETCD_MODULE]),
        kwok=str(versions[KWOK_MODULE]),
        helm=str(versions[HELM_MODULE]),
        tofu=str(versions[TOFU_MODULE]),
        containerd=str(versions[CONTAINERD_MODULE]),
        runc=str(versions[RUNC_MODULE]),
        cni=str(versions[CNI_MODULE]),
        nvidia_toolkit=str(versions[NVIDIA_TOOLKIT_MODULE]),
        device_plugin=str(versions[DEVICE_PLUGIN_MODULE]),
        kubectl_provider=str(versions[KUBECTL_PROVIDER_MODULE]),
        argocd=str(versions[ARGOCD_MODULE]),
        prometheus_adapter=str(versions[PROMETHEUS_ADAPTER_MODULE]),
    )


def staging_version(kubernetes_version: str) -> str:
    """k8s.io/kubernetes v1.X.Y publishes its staging modules as v0.X.Y."""
    major, minor, patch = kubernetes_version.removeprefix("v").split(".")
    if major != "1":
        raise ValueError(f"unsupported Kubernetes version {kubernetes_version}")
    return f"v0.{minor}.{patch}"
