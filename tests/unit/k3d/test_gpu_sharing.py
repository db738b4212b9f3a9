"""GPU time-slicing declared in platform.yaml (``gpuSharing: {replicas: N}`` on gpu nodes):
validation, the sim node's capacity and GFD labels, verify's expected capacity, and the
device plugin config rendered for the k3d backend."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from gpuplane.backends.gpu_enablement import config_map, device_plugin_config
from gpuplane.backends.local.gfd_labels import gpu_feature_labels
from gpuplane.backends.local.kwok_nodes import node_capacity
from gpuplane.kube.nodes import NodeView
from gpuplane.topology import TopologyError, load_platform
from gpuplane.verify.gpu_checks import check_capacity
from gpuplane.verify.model import Status

REPO = Path(__file__).resolve().parents[3]


def shared_platform(tmp_path: Path, sharing: dict[str, object], on: str = "agent-2") -> Path:
    document = yaml.safe_load((REPO / "platform.yaml").read_text())
    for node in document["spec"]["nodes"]:
        if node["name"] == on:
            node["gpuSharing"] = sharing
    file = tmp_path / "platform.yaml"
    file.write_text(yaml.safe_dump(document))
    return file


def test_time_slicing_multiplies_capacity_and_renames_the_product(tmp_path: Path) -> None:
    platform = load_platform(shared_platform(tmp_path, {"replicas": 4}))
    gpu = platform.spec.nodes[3]
    assert (gpu.gpu_count, gpu.gpu_allocatable) == (1, 4)
    assert node_capacity(gpu)["nvidia.com/gpu"] == "4"
    labels = gpu_feature_labels(gpu)
    assert labels["nvidia.com/gpu.product"] == "NVIDIA-GeForce-RTX-4090-SHARED"
    assert labels["nvidia.com/gpu.replicas"] == "4"
    assert labels["nvidia.com/gpu.count"] == "1"
    live = [NodeView("agent-2", {}, (), True, 4, True, "kwok")]
    assert check_capacity(platform, live).status is Status.PASSED
    config = device_plugin_config(platform)
    assert config["sharing"] == {
        "timeSlicing": {"resources": [{"name": "nvidia.com/gpu", "replicas": 4}]}
    }
    rendered = yaml.safe_load(config_map(platform)["data"]["config.yaml"])
    assert rendered == config


def test_no_sharing_renders_a_plain_config() -> None:
    assert "sharing" not in device_plugin_config(load_platform(REPO / "platform.yaml"))


@pytest.mark.parametrize(
    ("sharing", "on", "message"),
    [
        ({"replicas": 1}, "agent-2", "greater than or equal to 2"),
        ({"replicas": 2}, "agent-0", "only gpu-role nodes may declare gpuSharing"),
        ({"slices": 2}, "agent-2", "unknown field 'slices'"),
    ],
)
def test_invalid_sharing(tmp_path: Path, sharing: dict[str, object], on: str, message: str) -> None:
    with pytest.raises(TopologyError) as caught:
        load_platform(shared_platform(tmp_path, sharing, on))
    assert any(message in line and "gpuSharing" in line for line in caught.value.lines), (
        caught.value.lines
    )
