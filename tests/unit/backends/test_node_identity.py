"""Node identity and the sim Node objects, from the topology (pure).

Covers: bootstrap labels exclude the labels NodeRestriction reserves and carry
gpuplane.io/role; GFD labels only on gpu nodes, memory from the product table or the
override; capacity with nvidia.com/gpu only on gpu nodes; drift detection ignores the
lifecycle controller's taints; the platform step patches only missing labels.
"""

from __future__ import annotations

from pathlib import Path

from gpuplane.backends.identity import bootstrap_labels
from gpuplane.backends.local.gfd_labels import gpu_feature_labels
from gpuplane.backends.local.kwok_nodes import node_manifest
from gpuplane.backends.local.registration import node_drift
from gpuplane.backends.platform_labels import missing_labels
from gpuplane.topology import Node, load_platform

REPO = Path(__file__).resolve().parents[3]


def nodes() -> dict[str, Node]:
    return {node.name: node for node in load_platform(REPO / "platform.yaml").spec.nodes}


def test_bootstrap_labels_leave_reserved_labels_to_the_platform_step() -> None:
    infra = nodes()["agent-1"]
    assert infra.labels == {"node-role.kubernetes.io/infra": "true"}
    assert bootstrap_labels(infra) == {"gpuplane.io/role": "infra"}


def test_gpu_feature_labels() -> None:
    gpu = nodes()["agent-2"]
    assert gpu_feature_labels(gpu) == {
        "nvidia.com/gpu.present": "true",
        "nvidia.com/gpu.product": "NVIDIA-GeForce-RTX-4090",
        "nvidia.com/gpu.count": "1",
        "nvidia.com/gpu.memory": "24564",
    }
    assert gpu_feature_labels(nodes()["agent-0"]) == {}
    custom = gpu.model_copy(update={"gpus": 4, "gpu_product": "Acme-X1", "gpu_memory_mib": 8192})
    assert gpu_feature_labels(custom)["nvidia.com/gpu.memory"] == "8192"
    assert gpu_feature_labels(custom)["nvidia.com/gpu.count"] == "4"


def test_node_manifest_for_gpu_and_app_nodes() -> None:
    gpu = node_manifest(nodes()["agent-2"])
    assert gpu["spec"]["taints"] == [
        {"key": "node-role.kubernetes.io/gpu", "value": "true", "effect": "NoSchedule"}
    ]
    assert gpu["status"]["capacity"]["nvidia.com/gpu"] == "1"
    assert gpu["status"]["allocatable"] == gpu["status"]["capacity"]
    assert gpu["metadata"]["labels"]["gpuplane.io/role"] == "gpu"
    assert "node-role.kubernetes.io/gpu" not in gpu["metadata"]["labels"]
    app = node_manifest(nodes()["agent-0"])
    assert "nvidia.com/gpu" not in app["status"]["capacity"]
    assert app["spec"]["taints"] == []


def test_drift_ignores_lifecycle_taints_but_sees_missing_ones() -> None:
    wanted = node_manifest(nodes()["agent-2"])
    live = {
        "metadata": {"labels": {**wanted["metadata"]["labels"], "extra": "kept"}},
        "spec": {
            "taints": [
                *wanted["spec"]["taints"],
                {"key": "node.kubernetes.io/not-ready", "effect": "NoSchedule"},
            ]
        },
        "status": {"capacity": dict(wanted["status"]["capacity"])},
    }
    assert node_drift(wanted, live) == []
    live["spec"]["taints"] = []
    live["status"]["capacity"]["nvidia.com/gpu"] = "0"
    assert node_drift(wanted, live) == ["taints", "capacity"]


def test_platform_step_patches_only_what_is_missing() -> None:
    declared = {"node-role.kubernetes.io/gpu": "true", "team": "ml"}
    assert missing_labels(declared, {"team": "ml"}) == {"node-role.kubernetes.io/gpu": "true"}
    assert missing_labels(declared, {**declared, "other": "x"}) == {}
