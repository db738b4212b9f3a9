"""End to end on the k3d backend with a real NVIDIA GPU: up, verify including the real
nvidia-smi smoke test, down. Runs only where `gpuplane doctor` passes; elsewhere it is
reported as skipped with "not run: needs Docker + NVIDIA GPU" (never a silent pass).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
import yaml

from gpuplane.doctor import Level, collect_facts, evaluate
from tests.integration.conftest import run_cli

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.e2e


def gpu_host_problems() -> list[str]:
    if shutil.which("docker") is None:
        return ["docker not installed"]
    return [f"{c.id}: {c.summary}" for c in evaluate(collect_facts()) if c.level is Level.FAIL]


def test_k3d_gpu_cluster_end_to_end(tmp_path: Path) -> None:
    problems = gpu_host_problems()
    if problems:
        pytest.skip("not run: needs Docker + NVIDIA GPU (" + "; ".join(problems) + ")")
    document = yaml.safe_load((REPO / "platform.yaml").read_text())
    document["metadata"]["name"] = "gpuplane-e2e"
    document["spec"]["backend"] = "k3d"
    platform = tmp_path / "platform.yaml"
    platform.write_text(yaml.safe_dump(document))
    env = {**os.environ, "GPUPLANE_STATE": str(tmp_path / "state")}
    try:
        up = run_cli(["-f", str(platform), "up"], env)
        assert up.code == 0, up.stderr
        verify = run_cli(["-f", str(platform), "verify", "-o", "json"], env)
        report = yaml.safe_load(verify.stdout)
        assert verify.code == 0, verify.stdout
        smoke = next(check for check in report["checks"] if check["id"] == "gpu.smoke-test")
        assert smoke["status"] == "passed"
        assert any("NVIDIA" in line for line in smoke["evidence"])
    finally:
        assert run_cli(["-f", str(platform), "down"], env).code == 0
