"""Render a k3d config (``k3d.io/v1alpha5``, kind Simple) from the topology (pure).

Node identity at registration: each k3s node gets ``--node-name`` (so Kubernetes node
names are the declared ones), its taints (``--node-taint``) and its bootstrap labels
(``gpuplane.io/role`` and any declared label a kubelet may set). The reserved
``node-role.kubernetes.io/*`` labels come afterwards from the platform step.
Node filters address k3d's groups: ``server:0`` is the control plane, ``agent:i`` the
i-th other node in declaration order.
"""

from __future__ import annotations

from typing import Any

from gpuplane.backends.identity import bootstrap_labels
from gpuplane.topology import Node, Platform

K3S_RELEASE_SUFFIX = "k3s1"
IMAGE_REPOSITORY = "gpuplane/k3s-cuda"


def node_image(kubernetes_version: str) -> str:
    """The CUDA k3s node image built from images/k3s-cuda for this Kubernetes release."""
    return f"{IMAGE_REPOSITORY}:{kubernetes_version}-{K3S_RELEASE_SUFFIX}"


def node_filters(platform: Platform) -> dict[str, str]:
    """Declared node name -> k3d node filter."""
    filters: dict[str, str] = {}
    agents = 0
    for node in platform.spec.nodes:
        if node.role == "control-plane":
            filters[node.name] = "server:0"
        else:
            filters[node.name] = f"agent:{agents}"
            agents += 1
    return filters


def _args_for(node: Node) -> list[str]:
    args = [f"--node-name={node.name}"]
    args += [f"--node-taint={taint}" for taint in node.taints]
    return args


def render_k3d_config(platform: Platform, kubernetes_version: str) -> dict[str, Any]:
    filters = node_filters(platform)
    extra_args: list[dict[str, Any]] = [
        # Ingress, load balancing and storage come from the platform (GitOps on the infra
        # node), not from k3s' bundled add-ons that would land on any node.
        {"arg": "--disable=traefik", "nodeFilters": ["server:0"]},
        {"arg": "--disable=servicelb", "nodeFilters": ["server:0"]},
    ]
    node_labels: list[dict[str, Any]] = []
    for node in platform.spec.nodes:
        extra_args += [{"arg": arg, "nodeFilters": [filters[node.name]]} for arg in _args_for(node)]
        node_labels += [
            {"label": f"{key}={value}", "nodeFilters": [filters[node.name]]}
            for key, value in sorted(bootstrap_labels(node).items())
        ]
    has_gpus = any(node.gpu_count for node in platform.spec.nodes)
    runtime: dict[str, Any] = {"gpuRequest": "all"} if has_gpus else {}
    return {
        "apiVersion": "k3d.io/v1alpha5",
        "kind": "Simple",
        "metadata": {"name": platform.name},
        "servers": 1,
        "agents": len(platform.spec.nodes) - 1,
        "image": node_image(kubernetes_version),
        "kubeAPI": {"hostIP": "127.0.0.1"},  # the API on loopback only
        "options": {
            "k3d": {"wait": True, "timeout": "300s"},
            "k3s": {"extraArgs": extra_args, "nodeLabels": node_labels},
            # The cluster gets a private kubeconfig; the user's default is never touched.
            "kubeconfig": {"updateDefaultKubeconfig": False, "switchCurrentContext": False},
            **({"runtime": runtime} if runtime else {}),
        },
    }
