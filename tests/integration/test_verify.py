"""``gpuplane verify`` on real sim clusters.

Covers: the default topology passes (table summary, exit 0) and the probe namespace is
gone afterwards; a topology with two gpu nodes (2 and 4 GPUs) and two app nodes passes;
breaking that cluster on purpose fails the matching check with evidence while the
unrelated checks pass: a removed gpu taint, a deleted GFD label, a rogue node carrying
the gpu role label; ``-o junit`` parses as XML with the right counts; ``-o json`` keeps
its schema; ``--keep-probes`` keeps the namespace; an unreachable cluster exits 3.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from lightkube.core.exceptions import ApiError
from lightkube.models.meta_v1 import ObjectMeta
from lightkube.resources.core_v1 import Namespace, Node
from lightkube.types import PatchType

from gpuplane.kube import connect
from tests.integration.conftest import CliResult, SimCluster, run_cli, write_platform

pytestmark = pytest.mark.integration

TOPOLOGY_CHECKS = {
    "topology.nodes",
    "topology.labels",
    "topology.taints",
    "topology.no-rogue-roles",
    "gpu.capacity",
    "gpu.feature-labels",
}
TWO_GPU_NODES: list[dict[str, object]] = [
    {
        "name": "server-0",
        "role": "control-plane",
        "taints": ["node-role.kubernetes.io/control-plane=true:NoSchedule"],
    },
    {"name": "agent-0", "role": "app", "labels": {"node-role.kubernetes.io/app": "true"}},
    {"name": "agent-1", "role": "app", "labels": {"node-role.kubernetes.io/app": "true"}},
    {
        "name": "agent-2",
        "role": "infra",
        "labels": {"node-role.kubernetes.io/infra": "true"},
        "taints": ["node-role.kubernetes.io/infra=true:NoSchedule"],
    },
    {
        "name": "gpu-0",
        "role": "gpu",
        "gpus": 2,
        "gpuProduct": "NVIDIA-L4",
        "labels": {"node-role.kubernetes.io/gpu": "true"},
        "taints": ["node-role.kubernetes.io/gpu=true:NoSchedule"],
    },
    {
        "name": "gpu-1",
        "role": "gpu",
        "gpus": 4,
        "gpuProduct": "NVIDIA-A100-SXM4-80GB",
        "labels": {"node-role.kubernetes.io/gpu": "true"},
        "taints": ["node-role.kubernetes.io/gpu=true:NoSchedule"],
    },
]


def verify_json(cluster: SimCluster) -> tuple[int, dict[str, Any]]:
    result = cluster.cli("verify", "-o", "json")
    return result.code, json.loads(result.stdout)


def statuses(report: dict[str, Any]) -> dict[str, str]:
    return {check["id"]: check["status"] for check in report["checks"]}


def evidence(report: dict[str, Any], check_id: str) -> str:
    (check,) = [c for c in report["checks"] if c["id"] == check_id]
    return "\n".join(check["evidence"])


def namespace_exists(cluster: SimCluster, name: str) -> bool:
    try:
        cluster.client.get(Namespace, name)
    except ApiError as error:
        assert error.status.code == 404
        return False
    return True


@pytest.fixture(scope="module")
def two_gpu_cluster(
    tmp_path_factory: pytest.TempPathFactory, sim_env: dict[str, str]
) -> Iterator[SimCluster]:
    file = write_platform(tmp_path_factory.mktemp("two-gpu"), "gpuplane-two-gpu", TWO_GPU_NODES)
    up = run_cli(["-f", str(file), "up"], sim_env)
    assert up.code == 0, up.stderr
    kubeconfig = Path(sim_env["GPUPLANE_STATE"]) / "gpuplane-two-gpu" / "kubeconfig"
    cluster = SimCluster(file, sim_env, kubeconfig, connect(kubeconfig))
    yield cluster
    assert cluster.cli("down").code == 0


def test_default_topology_passes_and_cleans_up(sim_cluster: SimCluster) -> None:
    result: CliResult = sim_cluster.cli("verify")
    assert result.code == 0, result.stdout + result.stderr
    assert result.stdout.strip().splitlines()[-1] == (
        "10 passed, 0 failed, 2 skipped, 2 simulated (not counted as passed)"
    )
    code, report = verify_json(sim_cluster)
    assert code == 0
    assert report["schemaVersion"] == 2
    assert report["simulated"] is True
    summary = {"passed": 10, "failed": 0, "skipped": 2, "simulated": 2, "ok": True}
    assert report["summary"] == summary
    simulated = {c["id"] for c in report["checks"] if c["status"] == "simulated"}
    assert simulated == {"gpu.capacity", "gpu.feature-labels"}
    skipped = {c["id"]: c["reason"] for c in report["checks"] if c["status"] == "skipped"}
    assert skipped == {
        "gpu.device-plugin": "simulated: capacity written by the local backend",
        "gpu.smoke-test": "needs a real GPU",
    }
    assert "agent-2" in evidence(report, "probe.gpu-to-gpu")
    assert "Insufficient nvidia.com/gpu" in evidence(report, "probe.too-many-gpus")
    assert not namespace_exists(sim_cluster, report["probeNamespace"])


def test_junit_output_parses_with_the_right_counts(sim_cluster: SimCluster) -> None:
    result = sim_cluster.cli("verify", "-o", "junit")
    assert result.code == 0
    root = ET.fromstring(result.stdout)  # noqa: S314 - our own output
    suite = root.find("testsuite")
    assert suite is not None
    # Two skipped and two simulated (KWOK gpu node): a JUnit consumer counts four skips.
    assert (suite.get("tests"), suite.get("failures"), suite.get("skipped")) == ("14", "0", "4")
    cases = suite.findall("testcase")
    assert len(cases) == 14
    assert sum(case.find("skipped") is not None for case in cases) == 4
    simulated = {
        case.get("name") for case in cases if case.find("skipped[@type='simulated']") is not None
    }
    assert simulated == {"gpu.capacity", "gpu.feature-labels"}


def test_keep_probes_keeps_the_namespace(sim_cluster: SimCluster) -> None:
    result = sim_cluster.cli("verify", "-o", "json", "--keep-probes")
    report = json.loads(result.stdout)
    name = report["probeNamespace"]
    assert name.startswith("gpuplane-verify-")
    assert namespace_exists(sim_cluster, name)
    sim_cluster.client.delete(Namespace, name)


def test_unreachable_cluster_exits_3(tmp_path: Path, sim_env: dict[str, str]) -> None:
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(
        "apiVersion: v1\nkind: Config\ncurrent-context: c\n"
        "clusters: [{name: c, cluster: {server: 'https://127.0.0.1:1'}}]\n"
        "contexts: [{name: c, context: {cluster: c, user: u}}]\nusers: [{name: u, user: {}}]\n"
    )
    file = write_platform(tmp_path, "gpuplane-nowhere")
    result = run_cli(["-f", str(file), "verify", "--kubeconfig", str(kubeconfig)], sim_env)
    assert result.code == 3
    assert "unreachable" in result.stderr


def test_two_gpu_nodes_and_two_app_nodes_pass(two_gpu_cluster: SimCluster) -> None:
    code, report = verify_json(two_gpu_cluster)
    assert code == 0, json.dumps(report, indent=1)
    assert "gpu-0: 2 GPU(s)" in evidence(report, "gpu.capacity")
    assert "gpu-1: 4 GPU(s)" in evidence(report, "gpu.capacity")
    assert "asked 5 GPUs; the largest gpu node has 4" in evidence(report, "probe.too-many-gpus")


def test_removed_gpu_taint_fails_the_taint_check(two_gpu_cluster: SimCluster) -> None:
    client = two_gpu_cluster.client
    client.patch(Node, "gpu-0", {"spec": {"taints": []}}, patch_type=PatchType.MERGE)
    try:
        code, report = verify_json(two_gpu_cluster)
    finally:
        assert two_gpu_cluster.cli("up").code == 0  # repairs the taint
    assert code == 1
    result = statuses(report)
    assert result["topology.taints"] == "failed"
    assert "node gpu-0: taint node-role.kubernetes.io/gpu=true:NoSchedule is missing" in evidence(
        report, "topology.taints"
    )
    # Without its taint the gpu node takes the pod that should have stayed Pending.
    assert result["probe.gpu-without-toleration"] == "failed"
    assert "bound to gpu-0" in evidence(report, "probe.gpu-without-toleration")
    assert {check for check in TOPOLOGY_CHECKS if result[check] == "failed"} == {"topology.taints"}
    assert result["probe.gpu-to-gpu"] == "passed"
    assert result["probe.too-many-gpus"] == "passed"
    # Untolerating pods may now land on gpu-0 too; any failure must say so.
    for check in ("probe.plain-to-app", "probe.untolerated-avoids-tainted"):
        if result[check] == "failed":
            assert "gpu-0" in evidence(report, check)


def test_deleted_gfd_label_fails_only_the_label_check(two_gpu_cluster: SimCluster) -> None:
    client = two_gpu_cluster.client
    patch = {"metadata": {"labels": {"nvidia.com/gpu.product": None}}}
    client.patch(Node, "gpu-1", patch, patch_type=PatchType.MERGE)
    try:
        code, report = verify_json(two_gpu_cluster)
    finally:
        assert two_gpu_cluster.cli("up").code == 0
    assert code == 1
    failed = {check for check, status in statuses(report).items() if status == "failed"}
    assert failed == {"gpu.feature-labels"}
    assert evidence(report, "gpu.feature-labels") == "node gpu-1: missing nvidia.com/gpu.product"


def test_rogue_gpu_node_fails_only_the_rogue_check(two_gpu_cluster: SimCluster) -> None:
    client = two_gpu_cluster.client
    rogue = Node(
        metadata=ObjectMeta(
            name="rogue-0",
            labels={"node-role.kubernetes.io/gpu": "true"},
            annotations={"kwok.x-k8s.io/node": "fake"},
        ),
    )
    rogue_dict = rogue.to_dict()
    rogue_dict["spec"] = {"taints": [{"key": "rogue", "value": "true", "effect": "NoSchedule"}]}
    client.create(Node.from_dict(rogue_dict))  # type: ignore[call-overload]
    try:
        code, report = verify_json(two_gpu_cluster)
    finally:
        client.delete(Node, "rogue-0")
    assert code == 1
    failed = {check for check, status in statuses(report).items() if status == "failed"}
    assert failed == {"topology.no-rogue-roles"}
    assert evidence(report, "topology.no-rogue-roles") == (
        "undeclared node rogue-0 carries role label(s) node-role.kubernetes.io/gpu=true"
    )
