"""``gpuplane doctor`` on this very host, with its real tools: on an all-KWOK platform it
checks what real GPUs need (the k3d backend); the exit code agrees with the checks (3 when
any fails, with the local-backend suggestion), and JSON carries every check.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from tests.integration.conftest import run_cli, write_platform

EXPECTED_IDS = {
    "nvidia.driver",
    "docker.engine",
    "nvidia.container-toolkit",
    "host.cgroup",
    "host.wsl2",
    "tool.k3d",
    "tool.kubectl",
    "tool.terraform",
}


def test_doctor_reports_this_host_honestly(tmp_path: Path) -> None:
    kwok = str(write_platform(tmp_path, "doctor-kwok"))
    result = run_cli(["-f", kwok, "doctor", "-o", "json"], dict(os.environ))
    document = json.loads(result.stdout)
    ids = {check["id"] for check in document["checks"]}
    assert ids >= EXPECTED_IDS
    failed = [check for check in document["checks"] if check["level"] == "fail"]
    assert document["ok"] is (not failed)
    assert result.code == (3 if failed else 0)
    for check in failed:
        assert check["cause"] and check["fix"], check
    if failed:
        assert document["suggestion"] == "use --backend local"
    table = run_cli(["-f", kwok, "doctor"], dict(os.environ))
    assert table.code == result.code
    if failed:
        assert "instead: use --backend local" in table.stdout
