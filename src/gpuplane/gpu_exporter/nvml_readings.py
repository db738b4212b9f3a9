"""The GPUs' readings from NVML (nvidia-ml-py), one snapshot per scrape."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

MIB = 1024 * 1024


class NvmlUnavailable(RuntimeError):
    """NVML cannot start here (no driver, no device nodes): the message says why."""


@dataclass(frozen=True)
class GpuReading:
    index: int
    uuid: str
    name: str
    pci_bus_id: str
    minor: int
    values: dict[str, float]
    """DCGM field name -> value; a field the GPU does not report is absent."""


def _try(read: Any, *args: Any) -> Any:
    import pynvml  # noqa: PLC0415

    try:
        return read(*args)
    except pynvml.NVMLError:
        return None


class Nvml:
    def __init__(self) -> None:
        try:
            import pynvml  # noqa: PLC0415
        except ImportError as error:
            raise NvmlUnavailable(f"nvidia-ml-py is not installed ({error})") from error
        self.nvml = pynvml
        try:
            pynvml.nvmlInit()
        except pynvml.NVMLError as error:
            raise NvmlUnavailable(
                f"NVML did not start: {error} (no NVIDIA driver or GPU here?)"
            ) from error
        self.driver = str(pynvml.nvmlSystemGetDriverVersion())

    def close(self) -> None:
        self.nvml.nvmlShutdown()

    def read(self) -> list[GpuReading]:
        n = self.nvml
        readings = []
        for index in range(n.nvmlDeviceGetCount()):
            handle = n.nvmlDeviceGetHandleByIndex(index)
            values: dict[str, float] = {}
            utilization = _try(n.nvmlDeviceGetUtilizationRates, handle)
            if utilization is not None:
                values["DCGM_FI_DEV_GPU_UTIL"] = utilization.gpu
                values["DCGM_FI_DEV_MEM_COPY_UTIL"] = utilization.memory
            memory = _try(n.nvmlDeviceGetMemoryInfo, handle)
            if memory is not None:
                values["DCGM_FI_DEV_FB_USED"] = memory.used // MIB
                values["DCGM_FI_DEV_FB_FREE"] = memory.free // MIB
            temperature = _try(n.nvmlDeviceGetTemperature, handle, n.NVML_TEMPERATURE_GPU)
            if temperature is not None:
                values["DCGM_FI_DEV_GPU_TEMP"] = temperature
            power = _try(n.nvmlDeviceGetPowerUsage, handle)
            if power is not None:
                values["DCGM_FI_DEV_POWER_USAGE"] = power / 1000.0
            energy = _try(n.nvmlDeviceGetTotalEnergyConsumption, handle)
            if energy is not None:
                values["DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION"] = energy
            for field, clock in (
                ("DCGM_FI_DEV_SM_CLOCK", n.NVML_CLOCK_SM),
                ("DCGM_FI_DEV_MEM_CLOCK", n.NVML_CLOCK_MEM),
            ):
                mhz = _try(n.nvmlDeviceGetClockInfo, handle, clock)
                if mhz is not None:
                    values[field] = mhz
            pci = n.nvmlDeviceGetPciInfo(handle)
            bus_id = pci.busId.decode() if isinstance(pci.busId, bytes) else str(pci.busId)
            readings.append(
                GpuReading(
                    index=index,
                    uuid=str(n.nvmlDeviceGetUUID(handle)),
                    name=str(n.nvmlDeviceGetName(handle)),
                    pci_bus_id=bus_id,
                    minor=int(_try(n.nvmlDeviceGetMinorNumber, handle) or index),
                    values=values,
                )
            )
        return readings
