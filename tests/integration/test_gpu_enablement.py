"""GPU enablement manifests on the real sim control plane: the RuntimeClass and the NVIDIA
device plugin are applied for real and the DaemonSet's pods are placed by the real
controller-manager and scheduler on the gpu node only; the GPU smoke-test pod passes a
server-side dry-run.
"""

from __future__ import annotations

from typing import cast

import pytest
import yaml
from lightkube.resources.apps_v1 import DaemonSet
from lightkube.resources.core_v1 import Pod

from gpuplane.kube.apply import apply_files
from tests.integration.conftest import REPO, SimCluster, delete_namespace
from tests.integration.downscaler_kit import wait_for

pytestmark = pytest.mark.integration
NAMESPACE = "gpu-operator-resources"


def test_device_plugin_lands_on_the_gpu_node_only(sim_cluster: SimCluster) -> None:
    client = sim_cluster.client
    applied = apply_files(
        client,
        [
            REPO / "apps/gpu-enablement/runtimeclass.yaml",
            REPO / "apps/gpu-enablement/nvidia-device-plugin.yaml",
        ],
    )
    assert "DaemonSet/nvidia-device-plugin" in applied
    try:

        def placed() -> list[str] | None:
            pods = list(
                client.list(
                    Pod,
                    namespace=NAMESPACE,
                    labels={"app.kubernetes.io/name": "nvidia-device-plugin"},
                )
            )
            nodes = [pod.spec.nodeName for pod in pods if pod.spec and pod.spec.nodeName]
            return [str(node) for node in nodes] if nodes else None

        assert wait_for("device plugin pods", placed, timeout=60) == ["agent-2"]
        status = client.get(DaemonSet, "nvidia-device-plugin", namespace=NAMESPACE).status
        assert status is not None and status.desiredNumberScheduled == 1
    finally:
        delete_namespace(client, NAMESPACE)


def test_smoke_test_pod_passes_server_side_dry_run(sim_cluster: SimCluster, ns: str) -> None:
    apply_files(sim_cluster.client, [REPO / "apps/gpu-enablement/runtimeclass.yaml"])
    document = yaml.safe_load((REPO / "apps/gpu-smoke-test/pod.yaml").read_text())
    pod = cast(Pod, Pod.from_dict(document))
    created = sim_cluster.client.create(pod, namespace=ns, dry_run=True)
    assert created.spec is not None and created.spec.runtimeClassName == "nvidia"
