"""``runtime: auto`` on this host (root, cgroups, overlayfs, no GPU): the repository's
platform.yaml comes up with its app node real and its gpu node KWOK, says why in ``up`` and
``status``, keeps that choice for later verbs (saved beside the cluster), and ``down``
removes the real node as for a declared one."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from gpuplane.backends.local.kubelet.layout import KUBELET_ROOT
from gpuplane.kube import connect
from tests.integration.conftest import REPO, SimCluster, run_cli

CLUSTER = "gpuplane-auto"


@pytest.fixture(scope="module")
def auto_cluster(
    tmp_path_factory: pytest.TempPathFactory, sim_env: dict[str, str]
) -> Iterator[tuple[SimCluster, str]]:
    if os.geteuid() != 0:
        pytest.fail("runtime: auto makes a real node only as root (this suite runs as root)")
    document = yaml.safe_load((REPO / "platform.yaml").read_text())
    document["metadata"]["name"] = CLUSTER
    file = tmp_path_factory.mktemp("auto") / "platform.yaml"
    file.write_text(yaml.safe_dump(document))
    up = run_cli(["-f", str(file), "up"], sim_env)
    kubeconfig = Path(sim_env["GPUPLANE_STATE"]) / CLUSTER / "kubeconfig"
    try:
        assert up.code == 0, f"gpuplane up failed:\n{up.stdout}\n{up.stderr}"
        yield SimCluster(file, sim_env, kubeconfig, connect(kubeconfig)), up.stdout
    finally:
        down = run_cli(["-f", str(file), "down"], sim_env)
        assert down.code == 0, down.stderr
        assert not KUBELET_ROOT.exists()


def test_the_app_node_is_real_and_up_says_why(auto_cluster: tuple[SimCluster, str]) -> None:
    cluster, up_output = auto_cluster
    assert "runtime auto -> kubelet for agent-0: this host can run a kubelet node" in up_output
    assert "runtime auto -> kwok for agent-2: NVML shows no GPU on this host" in up_output
    status = cluster.cli("status", "-o", "json")
    assert status.code == 0, status.stderr
    document = json.loads(status.stdout)
    nodes = {node["name"]: node for node in document["nodes"]}
    assert nodes["agent-0"]["simulated"] is False and nodes["agent-0"]["ready"] is True
    assert nodes["agent-2"]["simulated"] is True
    choices = {choice["node"]: choice["runtime"] for choice in document["runtimes"]}
    assert choices == {
        "server-0": "kwok",
        "agent-0": "kubelet",
        "agent-1": "kwok",
        "agent-2": "kwok",
    }


def test_later_verbs_keep_the_choice_up_made(auto_cluster: tuple[SimCluster, str]) -> None:
    cluster, _ = auto_cluster
    saved = Path(cluster.env["GPUPLANE_STATE"]) / CLUSTER / "runtimes.json"
    rows = json.loads(saved.read_text())
    assert {row["node"]: row["runtime"] for row in rows}["agent-0"] == "kubelet"
    # The saved choice is what later verbs read (tests/unit/backends/test_runtime_auto.py
    # tells a saved choice from a fresh one; here both would pick agent-0).
    table = cluster.cli("status")
    assert "runtime auto -> kubelet for agent-0" in table.stdout
    verify = cluster.cli("verify", "-o", "json")
    report = json.loads(verify.stdout)
    assert verify.code == 0, verify.stdout + verify.stderr
    # Its gpu node is KWOK: the GPU checks say simulated, never passed.
    statuses = {check["id"]: check["status"] for check in report["checks"]}
    assert statuses["gpu.capacity"] == statuses["gpu.feature-labels"] == "simulated"
