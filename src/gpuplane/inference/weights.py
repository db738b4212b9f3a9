"""Read a ``.safetensors`` file into numpy arrays: an 8-byte little-endian header length, a
JSON header naming each tensor's dtype, shape and byte range, then the raw bytes. The format
is that small, so no package is needed for it (and the file is mapped, not copied)."""

from __future__ import annotations

import json
import mmap
import struct
from pathlib import Path
from typing import Any

DTYPES = {"F32": "<f4", "F16": "<f2", "BF16": None, "I64": "<i8", "I32": "<i4"}
MAX_HEADER_BYTES = 100 * 1024 * 1024


class WeightsError(ValueError):
    """The weights file is not what the encoder needs; the message names the file."""


def load_safetensors(path: Path) -> dict[str, Any]:
    import numpy  # noqa: PLC0415 - the service's dependency, not the CLI's

    with path.open("rb") as handle:
        mapped = mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ)
    if len(mapped) < 8:
        raise WeightsError(f"{path}: too short for a safetensors header")
    (header_length,) = struct.unpack("<Q", mapped[:8])
    if header_length > min(MAX_HEADER_BYTES, len(mapped) - 8):
        raise WeightsError(f"{path}: header length {header_length} is past the file's end")
    try:
        header = json.loads(mapped[8 : 8 + header_length])
    except ValueError as error:
        raise WeightsError(f"{path}: header is not JSON ({error})") from error
    base = 8 + header_length
    tensors: dict[str, Any] = {}
    for name, spec in header.items():
        if name == "__metadata__":
            continue
        dtype = DTYPES.get(spec.get("dtype", ""))
        if dtype is None:
            raise WeightsError(f"{path}: tensor {name}: dtype {spec.get('dtype')!r} is not read")
        start, end = spec["data_offsets"]
        if not 0 <= start <= end <= len(mapped) - base:
            raise WeightsError(
                f"{path}: tensor {name}: byte range {start}..{end} is outside the file"
            )
        array = numpy.frombuffer(
            mapped,
            dtype=dtype,
            count=(end - start) // numpy.dtype(dtype).itemsize,
            offset=base + start,
        )
        tensors[name] = array.reshape(spec["shape"])
    return tensors
