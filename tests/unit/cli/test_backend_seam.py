"""The backend seam as the CLI meets it: ``--backend`` replaces spec.backend before
validation (so the runtime rules judge the platform that would be built); a verb that
needs a capability the backend lacks (offline images, host services) is bad input that
names the backend; a backend's pre-flight names every failed check and stops ``up``."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from gpuplane.backends.base import HostReport
from gpuplane.backends.choice import backend_for
from gpuplane.cli import main as cli_main
from gpuplane.doctor import DoctorCheck, Level
from gpuplane.errors import ExitCode, PrerequisiteError
from gpuplane.topology import TopologyError, load_platform

REPO = Path(__file__).resolve().parents[3]

KUBELET_PLATFORM = """\
apiVersion: gpuplane.io/v1alpha1
kind: Platform
metadata: {name: seam}
spec:
  backend: local
  nodes:
    - {name: server-0, role: control-plane,
       taints: ["node-role.kubernetes.io/control-plane=true:NoSchedule"]}
    - {name: agent-0, role: app, runtime: kubelet}
"""


def cli(argv: list[str], state: Path) -> tuple[int, str]:
    out, err = io.StringIO(), io.StringIO()
    code = cli_main.main(argv, stdout=out, stderr=err, env={"GPUPLANE_STATE": str(state)})
    return code, out.getvalue() + err.getvalue()


def test_backend_override_is_validated_with_the_platform(tmp_path: Path) -> None:
    file = tmp_path / "platform.yaml"
    file.write_text(KUBELET_PLATFORM)
    assert load_platform(file).spec.backend == "local"
    with pytest.raises(TopologyError) as caught:
        load_platform(file, backend="k3d")
    text = str(caught.value)
    assert "runtime applies to the local backend only" in text
    assert "given by --backend" in text
    code, output = cli(["-f", str(file), "up", "--backend", "k3d"], tmp_path / "state")
    assert code == ExitCode.BAD_INPUT == 2
    assert "runtime applies to the local backend only" in output
    assert not (tmp_path / "state").exists()  # nothing created, no pre-flight run


def test_the_old_backend_name_is_read_through_the_override(tmp_path: Path) -> None:
    platform = load_platform(REPO / "platform.yaml", backend="sim")
    assert backend_for(platform).name == "local"


@pytest.mark.parametrize(
    ("argv", "fragment"),
    [
        (["image", "build", "--services"], "k3d backend takes no offline images"),
        (["sim", "traffic", "list"], "k3d backend runs no services beside the cluster"),
        (["observability", "check", "--live"], "backend 'k3d' has no built-in Prometheus address"),
    ],
)
def test_a_capability_the_backend_lacks_is_bad_input(
    tmp_path: Path, argv: list[str], fragment: str
) -> None:
    code, output = cli(["-f", str(REPO / "platform.yaml"), "--backend", "k3d", *argv], tmp_path)
    assert code == ExitCode.BAD_INPUT, output
    assert fragment in output


def test_the_local_backend_has_both_capabilities() -> None:
    backend = backend_for(load_platform(REPO / "platform.yaml"))
    assert backend.images() is not None and backend.services() is not None


def test_a_failed_preflight_names_every_failed_check() -> None:
    report = HostReport(
        "kubelet node 'agent-0'",
        (
            DoctorCheck("kubelet.root", Level.FAIL, "running as uid 1000", "c", "run as root"),
            DoctorCheck("kubelet.swap", Level.WARN, "1 swap area(s)", "c", "swapoff -a"),
            DoctorCheck("kubelet.overlayfs", Level.FAIL, "no overlay", "c", "modprobe overlay"),
        ),
        "declare the node(s) runtime: kwok",
    )
    assert [check.id for check in report.failed] == ["kubelet.root", "kubelet.overlayfs"]
    with pytest.raises(PrerequisiteError) as caught:
        report.require()
    text = str(caught.value)
    assert "kubelet node 'agent-0' cannot run on this host" in text
    assert "running as uid 1000: c (fix: run as root)" in text
    assert "kubelet.root" in text and "kubelet.overlayfs" in text and "swap" not in text
    assert text.endswith("or declare the node(s) runtime: kwok")
    HostReport("KWOK nodes", (), "").require()  # nothing needed: nothing raised
