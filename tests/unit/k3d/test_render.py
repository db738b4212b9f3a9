"""The k3d config rendered from platform.yaml: golden files for the default topology and
a two-gpu-node one (reviewed by hand), and the rules behind them: the server carries the
control-plane taint, every node its declared name, taints and bootstrap labels, never a
``node-role.kubernetes.io/*`` label (NodeRestriction), GPUs requested, loopback API,
the user's kubeconfig untouched, and only keys the v1alpha5 Simple schema knows.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from gpuplane.backends.k3d.config import node_filters, render_k3d_config
from gpuplane.topology import load_platform

REPO = Path(__file__).resolve().parents[3]
FIXTURES = REPO / "tests" / "fixtures" / "k3d"

# The keys of k3d's v1alpha5 "Simple" config that gpuplane may use (k3d rejects others).
KNOWN_TOP = {"apiVersion", "kind", "metadata", "servers", "agents", "kubeAPI", "image", "options"}
KNOWN_OPTIONS = {"k3d", "k3s", "kubeconfig", "runtime"}
KNOWN_K3S = {"extraArgs", "nodeLabels"}


@pytest.mark.parametrize(
    ("platform_file", "golden"),
    [
        (REPO / "platform.yaml", "default.golden.yaml"),
        (FIXTURES / "two-gpu-platform.yaml", "two-gpu.golden.yaml"),
    ],
)
def test_rendered_config_matches_the_reviewed_golden_file(platform_file: Path, golden: str) -> None:
    rendered = render_k3d_config(load_platform(platform_file), "v1.34.2")
    assert rendered == yaml.safe_load((FIXTURES / golden).read_text())


def args_for(config: dict[str, Any], node_filter: str) -> list[str]:
    return [
        item["arg"]
        for item in config["options"]["k3s"]["extraArgs"]
        if item["nodeFilters"] == [node_filter]
    ]


def labels_for(config: dict[str, Any], node_filter: str) -> list[str]:
    return [
        item["label"]
        for item in config["options"]["k3s"]["nodeLabels"]
        if item["nodeFilters"] == [node_filter]
    ]


def test_identity_rules_for_every_node() -> None:
    platform = load_platform(FIXTURES / "two-gpu-platform.yaml")
    config = render_k3d_config(platform, "v1.34.2")
    filters = node_filters(platform)
    assert config["servers"] == 1 and config["agents"] == 5
    assert "--node-taint=node-role.kubernetes.io/control-plane=true:NoSchedule" in args_for(
        config, "server:0"
    )
    for node in platform.spec.nodes:
        node_args = args_for(config, filters[node.name])
        assert f"--node-name={node.name}" in node_args
        assert {
            a.removeprefix("--node-taint=") for a in node_args if a.startswith("--node-taint=")
        } == set(node.taints)
        labels = labels_for(config, filters[node.name])
        assert f"gpuplane.io/role={node.role}" in labels
        assert not [label for label in labels if label.startswith("node-role.kubernetes.io/")]
    assert config["options"]["runtime"] == {"gpuRequest": "all"}
    assert config["kubeAPI"] == {"hostIP": "127.0.0.1"}
    assert config["options"]["kubeconfig"] == {
        "updateDefaultKubeconfig": False,
        "switchCurrentContext": False,
    }


def test_only_known_schema_keys() -> None:
    config = render_k3d_config(load_platform(FIXTURES / "two-gpu-platform.yaml"), "v1.34.2")
    assert set(config) <= KNOWN_TOP
    assert set(config["options"]) <= KNOWN_OPTIONS
    assert set(config["options"]["k3s"]) <= KNOWN_K3S
    for item in config["options"]["k3s"]["extraArgs"] + config["options"]["k3s"]["nodeLabels"]:
        assert set(item) in ({"arg", "nodeFilters"}, {"label", "nodeFilters"})


def test_no_gpu_request_without_gpu_nodes() -> None:
    platform = load_platform(REPO / "platform.yaml")
    cpu_only = platform.model_copy(
        update={"spec": platform.spec.model_copy(update={"nodes": platform.spec.nodes[:3]})}
    )
    assert "runtime" not in render_k3d_config(cpu_only, "v1.34.2")["options"]
