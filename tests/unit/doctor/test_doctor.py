"""doctor: parsing of nvidia-smi, docker info and version outputs (recorded in
tests/fixtures/doctor), and each failure's mapping to its cause and fix. The host facts
are built from those recordings, so every check is exercised without the real tools.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from gpuplane.doctor import HostFacts, Level, evaluate
from gpuplane.doctor.host import CommandOutput, collect_facts
from gpuplane.doctor.parsers import (
    kubectl_client_version,
    parse_docker_info,
    parse_nvidia_smi_query,
    parse_version,
    terraform_version,
)

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "doctor"


def fixture(name: str) -> str:
    return (FIXTURES / name).read_text()


def ok(name: str) -> CommandOutput:
    return CommandOutput(True, 0, fixture(name), "")


def healthy() -> HostFacts:
    return HostFacts(
        nvidia_smi=ok("nvidia-smi-query-rtx4090.csv"),
        docker_info=ok("docker-info-gpu.json"),
        nvidia_ctk=ok("nvidia-ctk-1.17.txt"),
        k3d=ok("k3d-version.txt"),
        kubectl=ok("kubectl-version.json"),
        terraform=ok("terraform-version.json"),
        proc_version=fixture("proc-version-ubuntu.txt"),
        cgroup_v2=True,
    )


def by_id(facts: HostFacts) -> dict[str, tuple[Level, str, str, str]]:
    return {c.id: (c.level, c.summary, c.cause, c.fix) for c in evaluate(facts)}


def test_parsers_read_the_recorded_outputs() -> None:
    (gpu,) = parse_nvidia_smi_query(fixture("nvidia-smi-query-rtx4090.csv"))
    assert (gpu.name, gpu.driver, gpu.memory_mib) == ("NVIDIA GeForce RTX 4090", "565.57.01", 24564)
    assert len(parse_nvidia_smi_query(fixture("nvidia-smi-query-two-gpus.csv"))) == 2
    info = parse_docker_info(fixture("docker-info-gpu.json"))
    assert info.server_version == "27.3.1"
    assert info.runtimes == ("io.containerd.runc.v2", "nvidia", "runc")
    assert info.cgroup_version == "2"
    assert not info.rootless
    assert parse_docker_info(fixture("docker-info-no-gpu-rootless.json")).rootless
    assert parse_docker_info(fixture("docker-info-daemon-down.json")).server_version is None
    assert parse_version(fixture("k3d-version.txt")) == (5, 7, 4)
    assert parse_version(fixture("nvidia-ctk-1.18.txt")) == (1, 18, 0)
    assert kubectl_client_version(fixture("kubectl-version.json")) == (1, 34, 2)
    assert terraform_version(fixture("terraform-version.json")) == (1, 9, 8)
    assert parse_version("no digits here") is None


def test_a_healthy_gpu_workstation_passes_everything() -> None:
    checks = evaluate(healthy())
    assert {c.id: c.level for c in checks} == {
        "nvidia.driver": Level.OK,
        "docker.engine": Level.OK,
        "docker.gpu": Level.OK,
        "docker.rootless": Level.OK,
        "nvidia.container-toolkit": Level.OK,
        "host.cgroup": Level.OK,
        "host.wsl2": Level.OK,
        "tool.k3d": Level.OK,
        "tool.kubectl": Level.OK,
        "tool.terraform": Level.OK,
    }
    summary = by_id(healthy())["nvidia.driver"][1]
    assert summary == "driver 565.57.01; NVIDIA GeForce RTX 4090 (24564 MiB)"


@pytest.mark.parametrize(
    ("change", "check_id", "level", "cause_part", "fix_part"),
    [
        (
            {"nvidia_smi": CommandOutput(False)},
            "nvidia.driver", Level.FAIL, "no NVIDIA driver", "install the NVIDIA driver",
        ),
        (
            {"nvidia_smi": CommandOutput(True, 9, fixture("nvidia-smi-no-driver.txt"), "")},
            "nvidia.driver", Level.FAIL, "kernel module is not loaded", "Secure Boot",
        ),
        (
            {"nvidia_smi": ok("nvidia-smi-query-old-driver.csv")},
            "nvidia.driver", Level.FAIL, "CUDA 12", "upgrade the NVIDIA driver",
        ),
        (
            {"docker_info": CommandOutput(False)},
            "docker.engine", Level.FAIL, "Docker containers", "--backend local",
        ),
        (
            {
                "docker_info": CommandOutput(
                    True, 1, fixture("docker-info-daemon-down.json"),
                    fixture("docker-info-daemon-down.stderr"),
                )
            },
            "docker.engine", Level.FAIL, "not running", "systemctl start docker",
        ),
        (
            {
                "docker_info": CommandOutput(
                    True, 1, fixture("docker-info-daemon-down.json"),
                    fixture("docker-info-permission.stderr"),
                )
            },
            "docker.engine", Level.FAIL, "Docker socket", "docker group",
        ),
        (
            {"docker_info": ok("docker-info-no-gpu-rootless.json")},
            "docker.gpu", Level.FAIL, "Container Toolkit", "nvidia-ctk runtime configure",
        ),
        (
            {"docker_info": ok("docker-info-no-gpu-rootless.json")},
            "docker.rootless", Level.WARN, "rootless Docker", "rootful",
        ),
        (
            {"nvidia_ctk": CommandOutput(False)},
            "nvidia.container-toolkit", Level.FAIL, "Container Toolkit", "install",
        ),
        (
            {"nvidia_ctk": ok("nvidia-ctk-1.18.txt")},
            "nvidia.container-toolkit", Level.WARN, "kind/nvkind", "1.17",
        ),
        ({"cgroup_v2": False}, "host.cgroup", Level.WARN, "cgroup v1", "unified_cgroup_hierarchy"),
        (
            {"proc_version": fixture("proc-version-wsl2.txt")},
            "host.wsl2", Level.WARN, "/dev/dxg", "CDI",
        ),
        ({"k3d": ok("k3d-version-old.txt")}, "tool.k3d", Level.FAIL, ">= 5.6", "k3d >= 5.6"),
        ({"k3d": CommandOutput(False)}, "tool.k3d", Level.FAIL, "k3d backend", "k3d"),
        (
            {"kubectl": CommandOutput(True, 0, '{"clientVersion": {"gitVersion": "v1.31.0"}}', "")},
            "tool.kubectl", Level.WARN, ">= 1.33", "one minor",
        ),
        (
            {"terraform": CommandOutput(True, 0, '{"terraform_version": "1.3.9"}', "")},
            "tool.terraform", Level.FAIL, ">= 1.5", "OpenTofu",
        ),
    ],
)  # fmt: skip
def test_each_failure_maps_to_its_cause_and_fix(
    change: dict[str, object], check_id: str, level: Level, cause_part: str, fix_part: str
) -> None:
    facts = dataclasses.replace(healthy(), **change)  # type: ignore[arg-type]
    got_level, _, cause, fix = by_id(facts)[check_id]
    assert got_level is level
    assert cause_part in cause
    assert fix_part in fix


def test_wsl_without_nvidia_smi_points_at_the_windows_driver() -> None:
    facts = dataclasses.replace(
        healthy(), nvidia_smi=CommandOutput(False), proc_version=fixture("proc-version-wsl2.txt")
    )
    assert "Windows NVIDIA driver" in by_id(facts)["nvidia.driver"][3]


def test_collect_facts_runs_each_tool_once_with_argument_lists(tmp_path: Path) -> None:
    (tmp_path / "proc").mkdir()
    (tmp_path / "proc" / "version").write_text(fixture("proc-version-wsl2.txt"))
    (tmp_path / "sys" / "fs" / "cgroup").mkdir(parents=True)
    (tmp_path / "sys" / "fs" / "cgroup" / "cgroup.controllers").write_text("cpu memory\n")
    calls: list[list[str]] = []

    def recorder(argv: list[str]) -> CommandOutput:
        calls.append(argv)
        return CommandOutput(found=argv[0] != "terraform")

    facts = collect_facts(recorder, root=tmp_path)
    assert [call[0] for call in calls] == [
        "terraform", "tofu", "nvidia-smi", "docker", "nvidia-ctk", "k3d", "kubectl",
    ]  # fmt: skip
    assert facts.cgroup_v2
    assert "microsoft" in facts.proc_version
