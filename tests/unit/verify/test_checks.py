"""verify's pure parts: node facts, topology and GPU checks, probe construction, probe
outcomes (bound, pending, timeouts), the smoke-test log verdict, JSON and JUnit output.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import replace
from pathlib import Path
from typing import Any

from gpuplane.backends.local.kwok_nodes import node_manifest
from gpuplane.kube.nodes import NodeView, read_node
from gpuplane.topology import Platform, load_platform
from gpuplane.verify.gpu_checks import (
    PluginPod,
    check_capacity,
    check_device_plugin,
    check_feature_labels,
)
from gpuplane.verify.model import Report, Status, as_simulated
from gpuplane.verify.output import report_json, report_junit
from gpuplane.verify.probe_outcome import PodObservation, decide
from gpuplane.verify.probes import Expect, build_probes, gpu_use
from gpuplane.verify.runner import NODE_CHECKS
from gpuplane.verify.smoke import gpu_lines, judge_log
from gpuplane.verify.topology_checks import (
    check_labels,
    check_no_rogue_roles,
    check_nodes,
    check_taints,
)

REPO = Path(__file__).resolve().parents[3]
FIXTURES = REPO / "tests" / "fixtures"


def platform() -> Platform:
    return load_platform(REPO / "platform.yaml")


def live_nodes() -> list[NodeView]:
    """The default topology as the sim backend registers it, Ready, labels applied."""
    facts = []
    for node in platform().spec.nodes:
        manifest: dict[str, Any] = node_manifest(node)
        manifest["metadata"]["labels"].update(node.labels)
        manifest["status"]["conditions"] = [{"type": "Ready", "status": "True"}]
        facts.append(read_node(manifest))
    return facts


def replace_node(nodes: list[NodeView], name: str, **changes: Any) -> list[NodeView]:
    return [replace(node, **changes) if node.name == name else node for node in nodes]


def test_all_checks_pass_on_a_faithful_cluster() -> None:
    nodes = live_nodes()
    for check in NODE_CHECKS:
        result = check(platform(), nodes)
        assert result.status is Status.PASSED, result


def test_missing_and_not_ready_nodes() -> None:
    nodes = [n for n in live_nodes() if n.name != "agent-1"]
    nodes = replace_node(nodes, "agent-2", ready=False)
    result = check_nodes(platform(), nodes)
    assert result.status is Status.FAILED
    assert result.evidence == ("node agent-1 (infra) does not exist", "node agent-2 is not Ready")


def test_wrong_label_and_missing_taint() -> None:
    nodes = replace_node(
        live_nodes(), "agent-1", labels={"node-role.kubernetes.io/infra": "false"}, taints=()
    )
    assert check_labels(platform(), nodes).evidence == (
        "node agent-1: label node-role.kubernetes.io/infra=true is 'false'",
    )
    assert check_taints(platform(), nodes).evidence == (
        "node agent-1: taint node-role.kubernetes.io/infra=true:NoSchedule is missing",
    )


def test_rogue_node_with_role_label() -> None:
    rogue = NodeView("rogue", {"gpuplane.io/role": "gpu"}, (), True, 0, False, "containerd://2.4.2")
    harmless = NodeView("extra", {"team": "x"}, (), True, 0, False, "containerd://2.4.2")
    result = check_no_rogue_roles(platform(), [*live_nodes(), rogue, harmless])
    assert result.status is Status.FAILED
    assert result.evidence == ("undeclared node rogue carries role label(s) gpuplane.io/role=gpu",)


def test_gpu_capacity_only_where_declared() -> None:
    nodes = replace_node(live_nodes(), "agent-0", gpus_allocatable=1)
    nodes = replace_node(nodes, "agent-2", gpus_allocatable=2)
    assert check_capacity(platform(), nodes).evidence == (
        "node agent-0 (app): allocatable nvidia.com/gpu is 1, declared 0",
        "node agent-2 (gpu): allocatable nvidia.com/gpu is 2, declared 1",
    )


def test_feature_label_count_must_match() -> None:
    gpu = next(n for n in live_nodes() if n.name == "agent-2")
    nodes = replace_node(
        live_nodes(), "agent-2", labels={**gpu.labels, "nvidia.com/gpu.count": "8"}
    )
    assert check_feature_labels(platform(), nodes).evidence == (
        "node agent-2: nvidia.com/gpu.count is 8, declared 1",
    )


def test_device_plugin_placement() -> None:
    p = platform()
    assert check_device_plugin(p, True, [], []).status is Status.SKIPPED
    assert check_device_plugin(p, False, [], []).status is Status.FAILED
    good = [PluginPod("kube-system/dp-1", "agent-2", True)]
    assert check_device_plugin(p, False, ["kube-system/dp"], good).status is Status.PASSED
    wrong = [*good, PluginPod("kube-system/dp-2", "agent-0", True)]
    assert check_device_plugin(p, False, ["kube-system/dp"], wrong).evidence == (
        "pod kube-system/dp-2 runs on agent-0, not a gpu node",
    )
    none_on_gpu = check_device_plugin(p, False, ["kube-system/dp"], [])
    assert "no device plugin pod on gpu node agent-2" in none_on_gpu.evidence[0]


def test_probes_are_derived_from_the_topology() -> None:
    probes = {probe.id: probe for probe in build_probes(platform())}
    assert list(probes) == [
        "probe.plain-to-app",
        "probe.infra-to-infra",
        "probe.gpu-to-gpu",
        "probe.gpu-without-toleration",
        "probe.too-many-gpus",
        "probe.untolerated-avoids-tainted",
    ]
    gpu_spec = probes["probe.gpu-to-gpu"].pods[0]["spec"]
    assert gpu_spec["nodeSelector"] == {"node-role.kubernetes.io/gpu": "true"}
    assert gpu_spec["tolerations"] == [
        {
            "key": "node-role.kubernetes.io/gpu",
            "operator": "Equal",
            "value": "true",
            "effect": "NoSchedule",
        }
    ]
    greedy = probes["probe.too-many-gpus"].pods[0]["spec"]["containers"][0]
    assert greedy["resources"]["limits"]["nvidia.com/gpu"] == "2"
    assert "tolerations" not in probes["probe.gpu-without-toleration"].pods[0]["spec"]
    assert len(probes["probe.untolerated-avoids-tainted"].pods) == 8
    assert probes["probe.plain-to-app"].allowed_nodes == frozenset({"agent-0"})


def test_probes_without_a_role_are_skipped() -> None:
    p = platform()
    only_core = p.spec.model_copy(update={"nodes": p.spec.nodes[:2]})
    probes = build_probes(p.model_copy(update={"spec": only_core}))
    assert {probe.id: probe.skip_reason for probe in probes if probe.skip_reason} == {
        "probe.infra-to-infra": "no infra node declared",
        "probe.gpu-to-gpu": "no gpu node declared",
        "probe.gpu-without-toleration": "no gpu node declared",
        "probe.too-many-gpus": "no gpu node declared",
    }


def test_bound_probe_outcomes() -> None:
    probe = next(p for p in build_probes(platform()) if p.id == "probe.gpu-to-gpu")
    assert decide(probe, {}, final=False, waited=1) is None
    ok = decide(probe, {"gpu": PodObservation(node="agent-2")}, final=False, waited=1)
    assert ok is not None and ok.status is Status.PASSED
    wrong = decide(probe, {"gpu": PodObservation(node="agent-0")}, final=False, waited=1)
    assert wrong is not None
    assert wrong.evidence == ("pod gpu was bound to agent-0, expected one of agent-2",)
    late = decide(
        probe, {"gpu": PodObservation(scheduling_failure="0/4 nodes")}, final=True, waited=60
    )
    assert late is not None
    assert late.evidence == ("pod gpu not bound after 60s: 0/4 nodes",)


def test_pending_probe_outcomes() -> None:
    probe = next(p for p in build_probes(platform()) if p.id == "probe.too-many-gpus")
    assert probe.expect is Expect.PENDING
    message = "0/4 nodes are available: 1 Insufficient nvidia.com/gpu."
    ok = decide(
        probe, {"gpu-greedy": PodObservation(scheduling_failure=message)}, final=False, waited=2
    )
    assert ok is not None and ok.status is Status.PASSED
    assert ok.evidence[-1] == "asked 2 GPUs; the largest gpu node has 1"
    bound = decide(probe, {"gpu-greedy": PodObservation(node="agent-2")}, final=False, waited=2)
    assert bound is not None and bound.status is Status.FAILED
    other = PodObservation(scheduling_failure="0/4 nodes are available: untolerated taint(s)")
    assert decide(probe, {"gpu-greedy": other}, final=False, waited=2) is None
    timed_out = decide(probe, {"gpu-greedy": other}, final=True, waited=60)
    assert timed_out is not None and timed_out.status is Status.FAILED
    assert (
        "expected a FailedScheduling event with 'Insufficient nvidia.com/gpu'"
        in timed_out.evidence[0]
    )


def test_smoke_test_log_verdict() -> None:
    log = (FIXTURES / "nvidia-smi" / "table-rtx4090.txt").read_text()
    assert gpu_lines(log) == ["0  NVIDIA GeForce RTX 4090        Off"]
    assert judge_log("Succeeded", log).status is Status.PASSED
    failed = judge_log("Failed", "Failed to initialize NVML: Unknown Error\n")
    assert failed.evidence == ("pod ended Failed: Failed to initialize NVML: Unknown Error",)
    assert judge_log("Succeeded", "No devices were found\n").status is Status.FAILED


def test_json_and_junit_outputs() -> None:
    broken = replace_node(live_nodes(), "agent-0", gpus_allocatable=1)
    checks = (
        check_nodes(platform(), live_nodes()),
        check_capacity(platform(), broken),
        check_device_plugin(platform(), True, [], []),
        as_simulated(check_feature_labels(platform(), live_nodes()), "simulated: KWOK"),
        as_simulated(check_capacity(platform(), broken), "a failure stays a failure"),
    )
    report = Report("gpuplane", "/k", True, checks, 1.5, "gpuplane-verify-abc")
    document = report_json(report)
    summary = {"passed": 1, "failed": 2, "skipped": 1, "simulated": 1, "ok": False}
    assert document["summary"] == summary
    statuses = [c["status"] for c in document["checks"]]
    assert statuses == ["passed", "failed", "skipped", "simulated", "failed"]
    assert report.summary_line() == (
        "1 passed, 2 failed, 1 skipped, 1 simulated (not counted as passed)"
    )
    suite = ET.fromstring(report_junit(report)).find("testsuite")  # noqa: S314 - our own output
    assert suite is not None
    # A JUnit consumer counts the simulated check as skipped, never as a pass.
    assert (suite.get("tests"), suite.get("failures"), suite.get("skipped")) == ("5", "2", "2")
    marked = suite.find("testcase[@name='gpu.feature-labels']/skipped")
    assert marked is not None and marked.get("type") == "simulated"
    failure = suite.find("testcase[@name='gpu.capacity']/failure")
    assert failure is not None and "agent-0 (app)" in (failure.text or "")


def test_gpu_placement_probe_is_skipped_when_every_gpu_is_held() -> None:
    def pod(name: str, node: str, gpus: int, phase: str = "Running") -> dict[str, Any]:
        limits = {"nvidia.com/gpu": str(gpus)} if gpus else {}
        return {
            "metadata": {"namespace": "ml", "name": name},
            "spec": {"nodeName": node, "containers": [{"resources": {"limits": limits}}]},
            "status": {"phase": phase},
        }

    use = gpu_use(
        [
            pod("llm-0", "agent-2", 1),
            pod("web", "agent-0", 0),
            pod("done", "agent-2", 1, "Succeeded"),
        ]
    )
    assert use.in_use == {"agent-2": 1}
    assert use.holders == ("ml/llm-0",)
    probes = {probe.id: probe for probe in build_probes(platform(), use)}
    assert (
        probes["probe.gpu-to-gpu"].skip_reason == "no free GPU on the gpu nodes (held by ml/llm-0)"
    )
    # the others still run: they need no free GPU
    assert not probes["probe.too-many-gpus"].skip_reason
    assert not probes["probe.gpu-without-toleration"].skip_reason
    free = {probe.id: probe for probe in build_probes(platform(), gpu_use([]))}
    assert not free["probe.gpu-to-gpu"].skip_reason
