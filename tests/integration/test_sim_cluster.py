"""The sim backend on the real control plane: nodes, version, and real scheduling.

Covers: four nodes Ready with the declared labels, taints, GFD labels and capacity;
/version reports the pinned release (our client and the machine's kubectl); a plain
Deployment lands only on the app node; infra and GPU pods land on their nodes; a GPU pod
without the toleration stays Pending on the untolerated taints; two GPUs on a one-GPU node
stay Pending on "Insufficient nvidia.com/gpu"; a pod with no toleration never lands on
tainted nodes.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time

import pytest
from lightkube.resources.apps_v1 import Deployment
from lightkube.resources.core_v1 import Node, Pod

from gpuplane.kube import get_raw, version_of
from gpuplane.toolchain import read_pins
from gpuplane.topology import load_platform
from tests.integration.conftest import SimCluster
from tests.integration.scheduling import (
    GPU_TOLERATION,
    INFRA_TOLERATION,
    pod,
    wait_for_node,
    wait_for_scheduling_failure,
)

pytestmark = pytest.mark.integration

GPU_SELECTOR = {"node-role.kubernetes.io/gpu": "true"}


def test_nodes_match_the_topology(sim_cluster: SimCluster) -> None:
    platform = load_platform(sim_cluster.platform_file)
    nodes = {n.metadata.name: n for n in sim_cluster.client.list(Node) if n.metadata}
    assert sorted(nodes) == sorted(node.name for node in platform.spec.nodes)
    for declared in platform.spec.nodes:
        live = nodes[declared.name]
        assert live.metadata and live.spec and live.status
        labels = live.metadata.labels or {}
        for key, value in declared.labels.items():
            assert labels.get(key) == value, (declared.name, key)
        assert labels["gpuplane.io/role"] == declared.role
        taints = {f"{t.key}={t.value or ''}:{t.effect}" for t in live.spec.taints or []}
        assert taints == set(declared.taints), declared.name
        ready = [c for c in live.status.conditions or [] if c.type == "Ready"]
        assert ready and ready[0].status == "True", declared.name
        allocatable = live.status.allocatable or {}
        assert allocatable.get("nvidia.com/gpu", "0") == str(declared.gpu_count)
        if declared.role == "gpu":
            assert labels["nvidia.com/gpu.present"] == "true"
            assert labels["nvidia.com/gpu.product"] == "NVIDIA-GeForce-RTX-4090"
            assert labels["nvidia.com/gpu.count"] == "1"
            assert labels["nvidia.com/gpu.memory"] == "24564"
        else:
            assert "nvidia.com/gpu.present" not in labels


def test_version_is_the_pinned_release(sim_cluster: SimCluster) -> None:
    pinned = read_pins().kubernetes
    assert version_of(get_raw(sim_cluster.kubeconfig, "/version")) == pinned


def test_the_machines_kubectl_works_with_our_kubeconfig(sim_cluster: SimCluster) -> None:
    kubectl = shutil.which("kubectl")
    assert kubectl, (
        "kubectl is a prerequisite of the test suite (apt-get install kubernetes-client)"
    )
    env = {**os.environ, "KUBECONFIG": str(sim_cluster.kubeconfig)}
    nodes = subprocess.run(
        [kubectl, "get", "nodes", "-o", "name"], env=env, capture_output=True, text=True,
        timeout=60, check=True,
    ).stdout.split()  # fmt: skip
    assert sorted(nodes) == ["node/agent-0", "node/agent-1", "node/agent-2", "node/server-0"]
    raw = subprocess.run(
        [kubectl, "get", "--raw", "/version"], env=env, capture_output=True, text=True,
        timeout=60, check=True,
    ).stdout  # fmt: skip
    assert version_of(raw) == read_pins().kubernetes
    assert (sim_cluster.kubeconfig.stat().st_mode & 0o777) == 0o600


def test_plain_deployment_lands_only_on_the_app_node(sim_cluster: SimCluster, ns: str) -> None:
    client = sim_cluster.client
    deployment = Deployment.from_dict(
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "web", "namespace": ns},
            "spec": {
                "replicas": 4,
                "selector": {"matchLabels": {"app": "web"}},
                "template": {
                    "metadata": {"labels": {"app": "web"}},
                    "spec": {"containers": [{"name": "web", "image": "nginx"}]},
                },
            },
        }
    )
    client.create(deployment)  # type: ignore[call-overload]
    deadline = time.monotonic() + 30
    nodes: list[str | None] = []
    while time.monotonic() < deadline:
        pods = list(client.list(Pod, namespace=ns, labels={"app": "web"}))
        nodes = [p.spec.nodeName if p.spec else None for p in pods]
        running = [p for p in pods if p.status and p.status.phase == "Running"]
        if len(pods) == 4 and len(running) == 4:
            break
        time.sleep(0.2)
    assert nodes == ["agent-0"] * 4


def test_infra_pod_lands_on_the_infra_node(sim_cluster: SimCluster, ns: str) -> None:
    sim_cluster.client.create(
        pod(
            "ingress",
            tolerations=[INFRA_TOLERATION],
            node_selector={"node-role.kubernetes.io/infra": "true"},
        ),
        namespace=ns,
    )
    assert wait_for_node(sim_cluster.client, "ingress", ns) == "agent-1"


def test_gpu_pod_lands_on_the_gpu_node(sim_cluster: SimCluster, ns: str) -> None:
    sim_cluster.client.create(
        pod("cuda", gpus=1, tolerations=[GPU_TOLERATION], node_selector=GPU_SELECTOR),
        namespace=ns,
    )
    assert wait_for_node(sim_cluster.client, "cuda", ns) == "agent-2"


def test_gpu_pod_without_toleration_stays_pending(sim_cluster: SimCluster, ns: str) -> None:
    sim_cluster.client.create(pod("cuda", gpus=1, node_selector=GPU_SELECTOR), namespace=ns)
    message = wait_for_scheduling_failure(sim_cluster.client, "cuda", ns)
    # Since Kubernetes 1.27 the event counts nodes instead of quoting the taint, so
    # the count is checked against the topology: every node with a NoSchedule taint
    # (server-0, agent-1, agent-2) rejects the pod on its taint, agent-0 on selector.
    assert "3 node(s) had untolerated taint(s)" in message
    assert "1 node(s) didn't match Pod's node affinity/selector" in message


def test_too_many_gpus_stay_pending(sim_cluster: SimCluster, ns: str) -> None:
    sim_cluster.client.create(
        pod("cuda", gpus=2, tolerations=[GPU_TOLERATION], node_selector=GPU_SELECTOR),
        namespace=ns,
    )
    message = wait_for_scheduling_failure(sim_cluster.client, "cuda", ns)
    assert "Insufficient nvidia.com/gpu" in message


def test_untolerating_pods_avoid_every_tainted_node(sim_cluster: SimCluster, ns: str) -> None:
    for index in range(6):
        sim_cluster.client.create(pod(f"p{index}"), namespace=ns)
    placed = {wait_for_node(sim_cluster.client, f"p{index}", ns) for index in range(6)}
    assert placed == {"agent-0"}
