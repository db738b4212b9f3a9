"""A kubelet node's configs as data: containerd's TOML (CRI with runc, CDI, the trap
`restrict_oom_score_adj`), the CNI bridge network, the KubeletConfiguration (webhook
auth, taints at registration) and the command line (bootstrap labels only: never a
node-role label, which NodeRestriction forbids)."""

from __future__ import annotations

import tomllib
from pathlib import Path

from gpuplane.backends.local.kubelet.layout import BRIDGE, POD_SUBNET, NodeLayout
from gpuplane.backends.local.kubelet.node_config import (
    SANDBOX_IMAGE,
    GpuBinaries,
    NodeBinaries,
    cni_network,
    containerd_config,
    kubelet_args,
    kubelet_configuration,
    nvidia_runtime_config,
)
from gpuplane.topology import Node

STATE = Path("/state/cluster")
BINARIES = NodeBinaries(
    kubelet=Path("/cache/bin/kubelet-v1.34.2/kubelet"),
    containerd=Path("/cache/bin/containerd-v2.4.2/containerd"),
    runc=Path("/cache/bin/runc-v1.5.3/runc"),
    cni_dir=Path("/cache/bin/cni-plugins-v1.10.0"),
)


def gpu_node() -> Node:
    return Node.model_validate(
        {
            "name": "agent-2",
            "role": "gpu",
            "gpus": 1,
            "runtime": "kubelet",
            "labels": {"node-role.kubernetes.io/gpu": "true", "team": "ml"},
            "taints": ["node-role.kubernetes.io/gpu=true:NoSchedule"],
        }
    )


def test_containerd_config_is_valid_toml_with_state_under_the_node() -> None:
    layout = NodeLayout(STATE, "agent-2")
    config = tomllib.loads(containerd_config(layout, BINARIES))
    assert config["version"] == 3
    assert config["root"] == str(STATE / "node-agent-2/containerd/root")
    assert config["grpc"]["address"] == str(layout.containerd_socket)
    cri = config["plugins"]["io.containerd.cri.v1.runtime"]
    assert cri["restrict_oom_score_adj"] is True
    assert cri["netns_mounts_under_state_dir"] is True
    assert cri["cdi_spec_dirs"] == ["/etc/cdi", "/var/run/cdi"]
    runc = cri["containerd"]["runtimes"]["runc"]
    assert runc["options"]["BinaryName"] == str(BINARIES.runc)
    assert cri["cni"]["bin_dirs"] == [str(BINARIES.cni_dir)]
    pinned = config["plugins"]["io.containerd.cri.v1.images"]["pinned_images"]
    assert pinned["sandbox"] == SANDBOX_IMAGE


def test_cni_network_is_our_bridge_without_masquerade() -> None:
    network = cni_network(NodeLayout(STATE, "agent-0"))
    bridge = network["plugins"][0]
    assert (bridge["type"], bridge["bridge"], bridge["ipMasq"]) == ("bridge", BRIDGE, False)
    assert bridge["ipam"]["ranges"] == [[{"subnet": POD_SUBNET}]]
    assert bridge["ipam"]["dataDir"].startswith(str(STATE))
    assert network["plugins"][1] == {"type": "loopback"}


def test_kubelet_configuration_never_anonymous_and_taints_at_registration() -> None:
    layout = NodeLayout(STATE, "agent-2")
    config = kubelet_configuration(
        gpu_node(), layout, client_ca=Path("/ca.crt"), node_ip="10.0.0.5"
    )
    assert config["authentication"]["anonymous"] == {"enabled": False}
    assert config["authentication"]["x509"] == {"clientCAFile": "/ca.crt"}
    assert config["authorization"] == {"mode": "Webhook"}
    assert config["readOnlyPort"] == 0
    assert config["address"] == "10.0.0.5"
    assert config["registerWithTaints"] == [
        {"key": "node-role.kubernetes.io/gpu", "value": "true", "effect": "NoSchedule"}
    ]
    assert config["containerRuntimeEndpoint"] == f"unix://{layout.containerd_socket}"


def test_kubelet_registers_with_bootstrap_labels_only() -> None:
    args = kubelet_args(gpu_node(), NodeLayout(STATE, "agent-2"), node_ip="10.0.0.5")
    labels = next(a for a in args if a.startswith("--node-labels="))
    assert labels == "--node-labels=gpuplane.io/role=gpu,team=ml"
    assert "node-role.kubernetes.io" not in " ".join(args)
    assert "--hostname-override=agent-2" in args
    assert "--root-dir=/var/lib/kubelet" in args


def test_a_gpu_node_gets_the_nvidia_handler_in_cdi_mode() -> None:
    gpu = GpuBinaries(
        nvidia_ctk=Path("/cache/bin/nvidia-toolkit-v1.20.2/nvidia-ctk"),
        nvidia_cdi_hook=Path("/cache/bin/nvidia-toolkit-v1.20.2/nvidia-cdi-hook"),
        nvidia_container_runtime=Path("/cache/bin/nvidia-toolkit-v1.20.2/nvidia-container-runtime"),
    )
    binaries = NodeBinaries(**{**vars(BINARIES), "gpu": gpu})
    config = tomllib.loads(containerd_config(NodeLayout(STATE, "agent-2"), binaries))
    runtimes = config["plugins"]["io.containerd.cri.v1.runtime"]["containerd"]["runtimes"]
    assert runtimes["nvidia"]["options"]["BinaryName"] == str(gpu.nvidia_container_runtime)
    assert runtimes["runc"]["options"]["BinaryName"] == str(BINARIES.runc)
    runtime = tomllib.loads(nvidia_runtime_config(binaries))
    assert runtime["nvidia-container-runtime"]["mode"] == "cdi"
    assert runtime["nvidia-container-runtime"]["runtimes"] == [str(BINARIES.runc)]
    assert runtime["nvidia-container-runtime"]["modes"]["cdi"]["default-kind"] == "nvidia.com/gpu"
    assert runtime["nvidia-ctk"]["path"] == str(gpu.nvidia_ctk)
    # A CPU node has no nvidia handler at all.
    cpu = tomllib.loads(containerd_config(NodeLayout(STATE, "agent-0"), BINARIES))
    assert "nvidia" not in cpu["plugins"]["io.containerd.cri.v1.runtime"]["containerd"]["runtimes"]
