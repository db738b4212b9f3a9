"""The traffic simulator simulates GPU series for simulated (KWOK) gpu nodes only: a real
kubelet gpu node's GPU is never given made-up DCGM series, and a node that turns real
(runtime changed to kubelet) stops being simulated."""

from __future__ import annotations

from typing import Any, cast

from lightkube.resources.core_v1 import Node

from gpuplane.backends.local.kwok_nodes import node_manifest
from gpuplane.simulation.traffic import Simulator
from gpuplane.topology import Node as DeclaredNode

GPU_NODE = DeclaredNode.model_validate(
    {
        "name": "agent-2",
        "role": "gpu",
        "gpus": 1,
        "labels": {"node-role.kubernetes.io/gpu": "true"},
        "taints": ["node-role.kubernetes.io/gpu=true:NoSchedule"],
    }
)


def real_node(manifest: dict[str, Any]) -> dict[str, Any]:
    """The same node as a kubelet registers it: no KWOK or simulated annotation."""
    real = dict(manifest)
    real["metadata"] = {**manifest["metadata"], "annotations": {}}
    return real


def test_simulated_gpu_node_gets_series_and_a_real_one_none() -> None:
    simulator = Simulator(None)
    simulated = node_manifest(GPU_NODE)
    simulator.on_node(cast(Node, Node.from_dict(simulated)))
    assert 'Hostname="agent-2"' in simulator.dcgm()
    simulator.on_node(cast(Node, Node.from_dict(real_node(simulated))))
    assert "agent-2" not in simulator.dcgm()
