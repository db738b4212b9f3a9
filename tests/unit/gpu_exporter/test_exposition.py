from __future__ import annotations

from gpuplane.gpu_exporter.exposition import exposition
from gpuplane.gpu_exporter.nvml_readings import GpuReading
from gpuplane.gpu_exporter.podresources import Holder


def gpu(index: int, uuid: str, **values: float) -> GpuReading:
    return GpuReading(index, uuid, "NVIDIA H200", f"00000000:0{index}:00.0", index, values)


def samples(text: str, name: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith(name + "{")]


def test_dcgm_exporter_labels_and_the_holding_pod() -> None:
    text = exposition(
        [gpu(0, "GPU-a", DCGM_FI_DEV_GPU_UTIL=87, DCGM_FI_DEV_POWER_USAGE=312.5)],
        {"GPU-a": [Holder("ml", "inference-6f-x", "server")]},
        "agent-2",
        "580.159.04",
    )
    (util,) = samples(text, "DCGM_FI_DEV_GPU_UTIL")
    assert util == (
        'DCGM_FI_DEV_GPU_UTIL{gpu="0",UUID="GPU-a",pci_bus_id="00000000:00:00.0",'
        'device="nvidia0",modelName="NVIDIA H200",Hostname="agent-2",'
        'DCGM_FI_DRIVER_VERSION="580.159.04",container="server",namespace="ml",'
        'pod="inference-6f-x"} 87'
    )
    assert samples(text, "DCGM_FI_DEV_POWER_USAGE")[0].endswith(" 312.5")
    assert "# TYPE DCGM_FI_DEV_GPU_UTIL gauge" in text
    # Fields a GPU did not report are left out, not written as 0.
    assert not samples(text, "DCGM_FI_DEV_GPU_TEMP")


def test_a_free_gpu_has_empty_pod_labels_and_a_shared_one_a_sample_per_pod() -> None:
    text = exposition(
        [gpu(0, "GPU-a", DCGM_FI_DEV_GPU_UTIL=10), gpu(1, "GPU-b", DCGM_FI_DEV_GPU_UTIL=50)],
        {"GPU-b": [Holder("ml", "p1", "c"), Holder("ml", "p2", "c")]},
        "node",
        "1",
    )
    util = samples(text, "DCGM_FI_DEV_GPU_UTIL")
    assert len(util) == 3
    assert 'gpu="0"' in util[0] and 'pod=""' in util[0]
    assert [line.split('pod="')[1].split('"')[0] for line in util[1:]] == ["p1", "p2"]
    assert all(line.endswith(" 50") for line in util[1:])


def test_label_values_are_escaped() -> None:
    text = exposition([gpu(0, 'GPU-"x"', DCGM_FI_DEV_GPU_UTIL=1)], {}, "n", "1")
    assert 'UUID="GPU-\\"x\\""' in text
