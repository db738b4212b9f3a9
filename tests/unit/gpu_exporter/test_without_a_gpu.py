from __future__ import annotations

import io

import pytest

from gpuplane.cli.main import main
from gpuplane.nvml import probe_nvml


@pytest.mark.skipif(not probe_nvml().error, reason="this host has a working NVML")
def test_no_nvml_is_a_missing_prerequisite_named_clearly(
    capsys: pytest.CaptureFixture[str],
) -> None:
    out, err = io.StringIO(), io.StringIO()
    code = main(["gpu-exporter", "--port", "0"], stdout=out, stderr=err, env={})
    assert code == 3
    assert "NVML did not start" in capsys.readouterr().err
