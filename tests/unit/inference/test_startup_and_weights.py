from __future__ import annotations

import json
import struct
import subprocess
import sys
import time
from pathlib import Path

import pytest

from gpuplane.inference.weights import WeightsError, load_safetensors
from gpuplane.shared.cold_start import Startup, process_started_at


def test_phases_are_durations_from_the_previous_mark() -> None:
    startup = Startup(started_at=100.0)
    for phase, at in (("imports", 101.0), ("weights_loaded", 101.5), ("on_device", 103.0)):
        startup.mark(phase, at)
    assert startup.durations() == {"imports": 1.0, "weights_loaded": 0.5, "on_device": 1.5}
    assert startup.total() is None
    startup.mark("warmed_up", 103.25)
    startup.mark("ready", 103.5)
    assert startup.total() == 3.5
    with pytest.raises(ValueError, match="unknown start-up phase"):
        startup.mark("compiled", 104.0)


def test_this_process_started_before_now() -> None:
    started = process_started_at()
    assert 0 < time.time() - started < 24 * 3600


def write(path: Path, header: object, data: bytes = b"") -> Path:
    raw = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(raw)) + raw + data)
    return path


def test_a_tensor_is_read_with_its_shape(tmp_path: Path) -> None:
    data = struct.pack("<4f", 1, 2, 3, 4)
    file = write(
        tmp_path / "w", {"t": {"dtype": "F32", "shape": [2, 2], "data_offsets": [0, 16]}}, data
    )
    tensor = load_safetensors(file)["t"]
    assert tensor.shape == (2, 2)
    assert tensor.tolist() == [[1.0, 2.0], [3.0, 4.0]]


@pytest.mark.parametrize(
    ("header", "data", "fragment"),
    [
        (
            {"t": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]}},
            b"\0" * 8,
            "not fully covered",
        ),
    ],
)
def test_a_broken_file_names_the_file_and_tensor(
    tmp_path: Path, header: object, data: bytes, fragment: str
) -> None:
    file = write(tmp_path / "broken.safetensors", header, data)
    with pytest.raises(WeightsError, match=fragment) as caught:
        load_safetensors(file)
    assert "broken.safetensors" in str(caught.value)


BF16_READ = """
import sys
from pathlib import Path
from gpuplane.inference.weights import WeightsError, load_safetensors
if sys.argv[2] == "ml_dtypes":
    import ml_dtypes  # what onnx imports: it teaches numpy bfloat16
try:
    print(load_safetensors(Path(sys.argv[1]))["t"].dtype)
except WeightsError as error:
    print("WeightsError:", error)
"""


def test_bfloat16_is_named_unless_numpy_has_learnt_it(tmp_path: Path) -> None:
    """numpy has no bfloat16 of its own: the file and the type are named. Once ml_dtypes is
    imported (onnx does, for the onnxruntime engine), the same file reads. Each case in a
    fresh interpreter: an import in this process would decide the other."""
    header = {"t": {"dtype": "BF16", "shape": [1], "data_offsets": [0, 2]}}
    file = write(tmp_path / "half.safetensors", header, b"\0" * 2)
    outputs = {
        imported: subprocess.run(
            [sys.executable, "-c", BF16_READ, str(file), imported],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        for imported in ("nothing", "ml_dtypes")
    }
    assert outputs["nothing"].startswith("WeightsError:"), outputs
    assert "half.safetensors" in outputs["nothing"] and "bfloat16" in outputs["nothing"]
    assert outputs["ml_dtypes"].strip() == "bfloat16", outputs


def test_a_header_past_the_end_is_refused(tmp_path: Path) -> None:
    file = tmp_path / "short.safetensors"
    file.write_bytes(struct.pack("<Q", 10_000) + b"{}")
    with pytest.raises(WeightsError, match="invalid header length"):
        load_safetensors(file)
