"""Every config of a kubelet node, from the topology and the node's layout (pure).

One function per file the node needs: containerd's TOML, the CNI network, the
KubeletConfiguration and the kubelet's command line. Nothing is edited on the host by
hand; tests read these back as data.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gpuplane.backends.identity import bootstrap_labels, taint_dicts
from gpuplane.backends.local.kubelet.layout import (
    BRIDGE,
    CDI_SPEC_DIRS,
    KUBELET_ROOT,
    NETWORK_NAME,
    POD_SUBNET,
    NodeLayout,
)
from gpuplane.topology import Node

# The sandbox ("pause") image every pod starts with; built offline by `gpuplane image`.
SANDBOX_IMAGE = "registry.k8s.io/pause:3.10.1"


# The RuntimeClass handler GPU pods ask for (apps/gpu-enablement/runtimeclass.yaml).
NVIDIA_HANDLER = "nvidia"


@dataclass(frozen=True)
class GpuBinaries:
    """The NVIDIA Container Toolkit's tools a gpu node runs."""

    nvidia_ctk: Path
    nvidia_cdi_hook: Path
    nvidia_container_runtime: Path


@dataclass(frozen=True)
class NodeBinaries:
    """Where the node's upstream binaries are (the toolchain cache)."""

    kubelet: Path
    containerd: Path
    runc: Path
    cni_dir: Path
    gpu: GpuBinaries | None = None


def _toml(value: str | bool | list[str]) -> str:
    # TOML basic strings take JSON's escapes; paths and names never need more.
    return json.dumps(value)


def containerd_config(layout: NodeLayout, binaries: NodeBinaries) -> str:
    """containerd 2's config (version 3): state under the node's directory, CRI with runc,
    CDI and the CNI bridge.

    ``restrict_oom_score_adj``: CAP_SYS_RESOURCE is missing from the capability bounding
    set on our machines, so runc cannot raise a sandbox's oom_score_adj; without this
    every pod sandbox fails to start.
    """
    cri = "plugins.'io.containerd.cri.v1"
    lines = [
        "version = 3",
        f"root = {_toml(str(layout.containerd_root))}",
        f"state = {_toml(str(layout.containerd_state))}",
        "",
        "[grpc]",
        f"  address = {_toml(str(layout.containerd_socket))}",
        "",
        f"[{cri}.images'.pinned_images]",
        f"  sandbox = {_toml(SANDBOX_IMAGE)}",
        "",
        f"[{cri}.runtime']",
        f"  cdi_spec_dirs = {_toml([str(d) for d in CDI_SPEC_DIRS])}",
        "  restrict_oom_score_adj = true",
        # Network namespaces under containerd's state, so `down` finds every one.
        "  netns_mounts_under_state_dir = true",
        "",
        f"[{cri}.runtime'.containerd]",
        "  default_runtime_name = 'runc'",
        "",
        f"[{cri}.runtime'.containerd.runtimes.runc]",
        "  runtime_type = 'io.containerd.runc.v2'",
        "",
        f"[{cri}.runtime'.containerd.runtimes.runc.options]",
        f"  BinaryName = {_toml(str(binaries.runc))}",
        "",
        *_nvidia_runtime(cri, binaries),
        f"[{cri}.runtime'.cni]",
        f"  bin_dirs = {_toml([str(binaries.cni_dir)])}",
        f"  conf_dir = {_toml(str(layout.cni_conf_dir))}",
        "",
    ]
    return "\n".join(lines)


def _nvidia_runtime(cri: str, binaries: NodeBinaries) -> list[str]:
    """On a gpu node, the ``nvidia`` handler: runc behind the NVIDIA Container Runtime in
    CDI mode, which turns a container's NVIDIA_VISIBLE_DEVICES into CDI devices (the
    driver's device nodes, libraries and nvidia-smi) -- what k3s's nvidia runtime does,
    without libnvidia-container."""
    if binaries.gpu is None:
        return []
    return [
        f"[{cri}.runtime'.containerd.runtimes.{NVIDIA_HANDLER}]",
        "  runtime_type = 'io.containerd.runc.v2'",
        "",
        f"[{cri}.runtime'.containerd.runtimes.{NVIDIA_HANDLER}.options]",
        f"  BinaryName = {_toml(str(binaries.gpu.nvidia_container_runtime))}",
        "",
    ]


def nvidia_runtime_config(binaries: NodeBinaries) -> str:
    """The NVIDIA Container Runtime's config.toml (read through NVIDIA_CTK_CONFIG_FILE_PATH):
    CDI mode over our runc, devices named by the device plugin's UUIDs or ``all``."""
    if binaries.gpu is None:
        raise ValueError("only a gpu node has an NVIDIA runtime")
    return "\n".join(
        [
            "[nvidia-container-runtime]",
            'mode = "cdi"',
            'log-level = "info"',
            f"runtimes = {_toml([str(binaries.runc)])}",
            "",
            "[nvidia-container-runtime.modes.cdi]",
            'default-kind = "nvidia.com/gpu"',
            f"spec-dirs = {_toml([str(d) for d in CDI_SPEC_DIRS])}",
            'annotation-prefixes = ["cdi.k8s.io/"]',
            "",
            "[nvidia-ctk]",
            f"path = {_toml(str(binaries.gpu.nvidia_ctk))}",
            "",
        ]
    )


def cni_network(layout: NodeLayout) -> dict[str, Any]:
    """The pod network: a bridge of our own with host-local addresses, no masquerade
    (pods talk to the host and each other; nothing here needs iptables)."""
    return {
        "cniVersion": "1.0.0",
        "name": NETWORK_NAME,
        "plugins": [
            {
                "type": "bridge",
                "bridge": BRIDGE,
                "isGateway": True,
                "ipMasq": False,
                "ipam": {
                    "type": "host-local",
                    "ranges": [[{"subnet": POD_SUBNET}]],
                    "routes": [{"dst": "0.0.0.0/0"}],
                    "dataDir": str(layout.cni_data_dir),
                },
            },
            {"type": "loopback"},
        ],
    }


def kubelet_configuration(
    node: Node, layout: NodeLayout, *, client_ca: Path, node_ip: str
) -> dict[str, Any]:
    """The KubeletConfiguration: webhook authn/authz against the API server (never
    anonymous), taints at registration, serving only on the node's address."""
    return {
        "apiVersion": "kubelet.config.k8s.io/v1beta1",
        "kind": "KubeletConfiguration",
        "address": node_ip,
        "readOnlyPort": 0,
        "healthzBindAddress": "127.0.0.1",
        "authentication": {
            "anonymous": {"enabled": False},
            "webhook": {"enabled": True},
            "x509": {"clientCAFile": str(client_ca)},
        },
        "authorization": {"mode": "Webhook"},
        "cgroupDriver": "cgroupfs",
        "containerRuntimeEndpoint": f"unix://{layout.containerd_socket}",
        "failSwapOn": False,
        "resolvConf": "",
        "podLogsDir": str(layout.pod_logs),
        "registerWithTaints": taint_dicts(node),
        # A workstation's disk is shared with everything else: never evict for it.
        "evictionHard": {"memory.available": "100Mi"},
        "imageGCHighThresholdPercent": 100,
        "serializeImagePulls": False,
    }


def kubelet_args(node: Node, layout: NodeLayout, *, node_ip: str) -> list[str]:
    """The kubelet's command line (the binary path first is the caller's)."""
    labels = ",".join(f"{key}={value}" for key, value in sorted(bootstrap_labels(node).items()))
    return [
        f"--config={layout.kubelet_config}",
        f"--kubeconfig={layout.kubeconfig}",
        f"--hostname-override={node.name}",
        f"--node-ip={node_ip}",
        f"--node-labels={labels}",
        f"--root-dir={KUBELET_ROOT}",
        f"--cert-dir={layout.pki}",
    ]
