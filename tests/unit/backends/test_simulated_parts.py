"""`gpuplane status` says what is simulated in this cluster only: KWOK nodes by name, the
GPU capacity and GPU series of KWOK gpu nodes, the traffic simulator while it runs; a
real kubelet gpu node is never described as simulated."""

from __future__ import annotations

from gpuplane.backends.base import NodeStatus
from gpuplane.backends.local.simulated_parts import simulated_parts


def node(name: str, role: str, *, simulated: bool) -> NodeStatus:
    runtime = "kwok" if simulated else "containerd://2.4.2"
    return NodeStatus(name, role, True, (), 1 if role == "gpu" else 0, simulated, runtime)


def test_all_kwok_with_traffic_says_everything() -> None:
    nodes = (node("agent-0", "app", simulated=True), node("agent-2", "gpu", simulated=True))
    parts = " | ".join(simulated_parts(nodes, traffic_running=True))
    assert "nodes agent-0, agent-2 are KWOK nodes" in parts
    assert "GFD labels of agent-2 are written from platform.yaml" in parts
    assert "traffic simulator" in parts
    assert "GPU metrics of agent-2" in parts


def test_a_real_gpu_node_is_not_called_simulated() -> None:
    nodes = (
        node("server-0", "control-plane", simulated=True),
        node("agent-2", "gpu", simulated=False),
    )
    parts = simulated_parts(nodes, traffic_running=False)
    assert parts == (
        "nodes server-0 are KWOK nodes: pods are scheduled and marked Running but never executed",
    )
    assert not any("agent-2" in part for part in parts)
