"""Prometheus text of the GPUs' readings with dcgm-exporter's names and labels (pure)."""

from __future__ import annotations

from gpuplane.gpu_exporter.nvml_readings import GpuReading
from gpuplane.gpu_exporter.podresources import Holder

# Name, type and help as dcgm-exporter's default counters file describes them.
METRICS = (
    ("DCGM_FI_DEV_GPU_UTIL", "gauge", "GPU utilization (in %)."),
    ("DCGM_FI_DEV_MEM_COPY_UTIL", "gauge", "Memory utilization (in %)."),
    ("DCGM_FI_DEV_FB_USED", "gauge", "Framebuffer memory used (in MiB)."),
    ("DCGM_FI_DEV_FB_FREE", "gauge", "Framebuffer memory free (in MiB)."),
    ("DCGM_FI_DEV_GPU_TEMP", "gauge", "GPU temperature (in C)."),
    ("DCGM_FI_DEV_POWER_USAGE", "gauge", "Power draw (in W)."),
    (
        "DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION",
        "counter",
        "Total energy consumption since boot (in mJ).",
    ),
    ("DCGM_FI_DEV_SM_CLOCK", "gauge", "SM clock frequency (in MHz)."),
    ("DCGM_FI_DEV_MEM_CLOCK", "gauge", "Memory clock frequency (in MHz)."),
)


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _value(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def exposition(
    readings: list[GpuReading], holders: dict[str, list[Holder]], hostname: str, driver: str
) -> str:
    """One sample per GPU and metric; a GPU held by several pods (time-slicing) gets one
    sample per pod, each with the whole GPU's value (NVML does not split a shared GPU's
    utilisation by pod). A free GPU keeps empty pod labels, as dcgm-exporter does."""
    lines: list[str] = []
    for name, kind, help_text in METRICS:
        samples = []
        for gpu in readings:
            if name not in gpu.values:
                continue
            base = {
                "gpu": str(gpu.index),
                "UUID": gpu.uuid,
                "pci_bus_id": gpu.pci_bus_id,
                "device": f"nvidia{gpu.minor}",
                "modelName": gpu.name,
                "Hostname": hostname,
                "DCGM_FI_DRIVER_VERSION": driver,
            }
            for holder in holders.get(gpu.uuid) or [Holder("", "", "")]:
                labels = {
                    **base,
                    "container": holder.container,
                    "namespace": holder.namespace,
                    "pod": holder.pod,
                }
                text = ",".join(f'{key}="{_escape(value)}"' for key, value in labels.items())
                samples.append(f"{name}{{{text}}} {_value(gpu.values[name])}")
        if samples:
            lines += [f"# HELP {name} {help_text}", f"# TYPE {name} {kind}", *samples]
    return "\n".join(lines) + "\n" if lines else ""
