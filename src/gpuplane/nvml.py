"""What the host's NVIDIA driver says about its GPUs, read through NVML (the driver's own
``libnvidia-ml.so.1``) with ctypes: no nvidia-smi, no Python binding needed."""

from __future__ import annotations

import ctypes
from dataclasses import dataclass

NVML_LIBRARY = "libnvidia-ml.so.1"


@dataclass(frozen=True)
class NvmlProbe:
    """What NVML said: ``error`` is empty when it initialised."""

    error: str = ""
    gpus: int = 0
    driver: str = ""
    names: tuple[str, ...] = ()
    memory_mib: tuple[int, ...] = ()


class _Memory(ctypes.Structure):
    _fields_ = [
        ("total", ctypes.c_ulonglong),
        ("free", ctypes.c_ulonglong),
        ("used", ctypes.c_ulonglong),
    ]


def probe_nvml(library: str = NVML_LIBRARY) -> NvmlProbe:
    """Initialise NVML, count the GPUs and read each one's name and memory."""
    try:
        nvml = ctypes.CDLL(library)
    except OSError as error:
        return NvmlProbe(error=f"{library} cannot be loaded ({error})")
    if nvml.nvmlInit_v2() != 0:
        return NvmlProbe(error="nvmlInit failed (driver not loaded, or no device nodes)")
    try:
        count = ctypes.c_uint(0)
        version = ctypes.create_string_buffer(96)
        nvml.nvmlDeviceGetCount_v2(ctypes.byref(count))
        nvml.nvmlSystemGetDriverVersion(version, ctypes.c_uint(96))
        names, memory = [], []
        for index in range(count.value):
            handle = ctypes.c_void_p()
            nvml.nvmlDeviceGetHandleByIndex_v2(ctypes.c_uint(index), ctypes.byref(handle))
            name = ctypes.create_string_buffer(96)
            nvml.nvmlDeviceGetName(handle, name, ctypes.c_uint(96))
            info = _Memory()
            nvml.nvmlDeviceGetMemoryInfo(handle, ctypes.byref(info))
            names.append(name.value.decode(errors="replace"))
            memory.append(info.total // (1024 * 1024))
        return NvmlProbe(
            gpus=count.value,
            driver=version.value.decode(errors="replace"),
            names=tuple(names),
            memory_mib=tuple(memory),
        )
    finally:
        nvml.nvmlShutdown()


def product_label(name: str) -> str:
    """GPU Feature Discovery's product label: the NVML name with spaces as dashes."""
    return "-".join(name.split())
