"""Simulated DCGM series (pure): one series set per GPU with dcgm-exporter's labels, GPUs
handed to holders in pod order, values that follow the holder's Deployment traffic,
nothing held -> zero, held but idle -> low utilisation with memory still used."""

from __future__ import annotations

import re

from gpuplane.simulation.gpu_metrics import GpuHolder, GpuNode, dcgm_exposition, deployment_of

NODE = GpuNode("agent-2", 2, "NVIDIA-L4", 23034)


def values(text: str, metric: str) -> dict[str, float]:
    """gpu index -> value of ``metric``."""
    found = {}
    for line in text.splitlines():
        if line.startswith(metric + "{"):
            gpu = re.search(r'gpu="(\d+)"', line)
            assert gpu is not None
            found[gpu.group(1)] = float(line.rsplit(" ", 1)[1])
    return found


def test_series_follow_holders_and_traffic() -> None:
    holders = [GpuHolder("ml", "llm-abc-1", "server", "agent-2", 1, "llm")]
    busy = dcgm_exposition([NODE], holders, {("ml", "llm"): 3.0})
    assert values(busy, "DCGM_FI_DEV_GPU_UTIL") == {"0": 65.0, "1": 0.0}
    assert 'namespace="ml",pod="llm-abc-1",container="server"' in busy
    assert 'gpu="1",UUID="GPU-' in busy and 'modelName="NVIDIA L4"' in busy
    used, free = values(busy, "DCGM_FI_DEV_FB_USED"), values(busy, "DCGM_FI_DEV_FB_FREE")
    assert used["0"] + free["0"] == 23034 and used["1"] == 0
    idle = dcgm_exposition([NODE], holders, {("ml", "llm"): 0.0})
    assert values(idle, "DCGM_FI_DEV_GPU_UTIL")["0"] == 1.0
    assert values(idle, "DCGM_FI_DEV_FB_USED")["0"] > 0
    for metric in ("DCGM_FI_DEV_GPU_TEMP", "DCGM_FI_DEV_POWER_USAGE"):
        assert f"# TYPE {metric} gauge" in busy


def test_gpus_go_to_holders_in_pod_order_and_never_beyond_capacity() -> None:
    holders = [
        GpuHolder("ml", "b", "c", "agent-2", 1, None),
        GpuHolder("ml", "a", "c", "agent-2", 2, None),
    ]
    text = dcgm_exposition([NODE], holders, {})
    pods = re.findall(r'DCGM_FI_DEV_GPU_UTIL\{gpu="(\d)".*?pod="([^"]*)"', text)
    assert pods == [("0", "a"), ("1", "a")]


def test_deployment_of_replica_set() -> None:
    assert deployment_of("llm-inference-987dbc7c7") == "llm-inference"
    assert deployment_of(None) is None
