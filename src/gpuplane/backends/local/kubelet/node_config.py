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


@dataclass(frozen=True)
class NodeBinaries:
    """Where the node's upstream binaries are (the toolchain cache)."""

    kubelet: Path
    containerd: Path
    runc: Path
    cni_dir: Path


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
        f"[{cri}.runtime'.cni]",
        f"  bin_dirs = {_toml([str(binaries.cni_dir)])}",
        f"  conf_dir = {_toml(str(layout.cni_conf_dir))}",
        "",
    ]
    return "\n".join(lines)


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
