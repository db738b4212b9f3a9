"""A sim platform in a scratch state dir for one benchmark, torn down afterwards."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from platforms import kwok_platform

REPO = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Scratch:
    gpuplane: list[str]  # the CLI on the default platform.yaml, its nodes pinned to KWOK
    env: dict[str, str]
    directory: Path


@contextlib.contextmanager
def scratch_platform() -> Iterator[Scratch]:
    with tempfile.TemporaryDirectory(prefix="gpuplane-bench-") as directory:
        platform = kwok_platform(Path(directory) / "platform.yaml")
        gpuplane = [sys.executable, "-m", "gpuplane.cli.main", "-f", str(platform)]
        env = {**os.environ, "GPUPLANE_STATE": directory}
        subprocess.run([*gpuplane, "up"], env=env, check=True, capture_output=True)
        try:
            yield Scratch(gpuplane, env, Path(directory))
        finally:
            subprocess.run([*gpuplane, "down"], env=env, check=True, capture_output=True)
