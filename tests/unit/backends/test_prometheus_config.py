"""Scrape targets for the pods of kubelet nodes (the local backend's stand-in for
Prometheus' Kubernetes discovery, which Debian's build leaves out), and the Prometheus
configuration that reads them, checked by Prometheus' own promtool."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from gpuplane.backends.local.gpu_exporter_service import (
    EXPORTER_MANIFEST,
    daemonset_of,
    metrics_port,
)
from gpuplane.backends.local.pod_targets import PodTargets, targets_of
from gpuplane.backends.local.services import Ports, prometheus_config
from gpuplane.kube.apply import read_documents
from gpuplane.toolchain import repo_root

NODES = frozenset({"agent-0"})


def pod(name: str, node: str = "agent-0", **overrides: Any) -> dict[str, Any]:
    annotations = {"prometheus.io/scrape": "true", "prometheus.io/port": "8000"}
    annotations.update(overrides.pop("annotations", {}))
    manifest: dict[str, Any] = {
        "metadata": {"name": name, "namespace": "ml", "annotations": annotations},
        "spec": {"nodeName": node},
        "status": {"phase": "Running", "podIP": f"10.88.0.{len(name)}"},
    }
    manifest["status"].update(overrides)
    return manifest


def test_only_running_annotated_pods_of_kubelet_nodes_are_targets() -> None:
    pods = [
        pod("server"),
        pod("on-kwok", node="agent-2"),  # its address leads nowhere
        pod("pending", phase="Pending"),
        pod("no-ip", podIP=""),
        pod("opted-out", annotations={"prometheus.io/scrape": "false"}),
        pod("bad-port", annotations={"prometheus.io/port": "http"}),
    ]
    assert targets_of(pods, NODES) == [
        {"targets": ["10.88.0.6:8000"], "labels": {"pod": "server", "namespace": "ml"}}
    ]


def test_the_file_follows_list_and_watch_events(tmp_path: Path) -> None:
    out = tmp_path / "kubelet-pods.json"
    targets = PodTargets(NODES, out)
    targets.listed("agent-0", [pod("a"), pod("bb", node="agent-2")])
    assert [t["targets"] for t in json.loads(out.read_text())] == [["10.88.0.1:8000"]]
    targets.event("ADDED", pod("ccc"))
    targets.event("MODIFIED", pod("a", phase="Succeeded"))
    assert [t["labels"]["pod"] for t in json.loads(out.read_text())] == ["ccc"]
    before = out.stat().st_mtime_ns
    targets.event("BOOKMARK", {})
    targets.event("MODIFIED", pod("bb", node="agent-2"))  # no target changes: not rewritten
    assert out.stat().st_mtime_ns == before
    targets.event("DELETED", pod("ccc"))
    assert json.loads(out.read_text()) == []
    # A fresh list of the node replaces that node's pods, and only those.
    targets.event("ADDED", pod("dddd"))
    targets.listed("agent-0", [pod("eeeee")])
    assert [t["labels"]["pod"] for t in json.loads(out.read_text())] == ["eeeee"]
    assert "ml/bb" in targets.pods  # another node's pod: kept
    assert not out.with_suffix(".partial").exists()


def test_prometheus_reads_the_targets_directory(tmp_path: Path) -> None:
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.fail("promtool is a prerequisite (apt-get install prometheus)")
    config = prometheus_config(Ports(1, 2, 3, 4), [], tmp_path / "scrape-targets")
    (workloads,) = [j for j in config["scrape_configs"] if j["job_name"] == "workloads"]  # type: ignore[attr-defined]
    assert workloads["honor_labels"] is True
    assert workloads["file_sd_configs"][0]["files"] == [str(tmp_path / "scrape-targets/*.json")]
    path = tmp_path / "prometheus.yml"
    path.write_text(yaml.safe_dump(config))
    checked = subprocess.run(
        [promtool, "check", "config", "--syntax-only", str(path)],
        capture_output=True, text=True, check=False, timeout=60,
    )  # fmt: skip
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_the_shipped_gpu_exporter_is_found_by_the_pod_discovery() -> None:
    """apps/gpu-exporter as it ships: its pods ask to be scraped at the exporter's port, so
    Prometheus reads the DCGM series whoever applied the DaemonSet (the GPU e2e run's HPA
    found no GPU metric when only `sim` registered the exporter, 2026-12-07)."""
    daemonset = daemonset_of(read_documents([repo_root() / EXPORTER_MANIFEST]))
    template = daemonset["spec"]["template"]
    metadata = {"name": "gpu-exporter-x7k2p", "namespace": "gpu-operator-resources"}
    exporter = {
        "metadata": {**metadata, "annotations": template["metadata"]["annotations"]},
        "spec": {"nodeName": "agent-0"},
        "status": {"phase": "Running", "podIP": "10.244.0.3"},
    }
    (target,) = targets_of([exporter], NODES)
    assert target["targets"] == [f"10.244.0.3:{metrics_port(daemonset)}"]
