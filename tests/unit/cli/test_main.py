"""The CLI's top-level handler: an unexpected exception (a bug) exits 4 with one line that
names it and where its traceback went, never a traceback on the terminal; the deprecated
backend name `sim` still reads as `local`."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from gpuplane.cli import main as cli_main
from gpuplane.cli.commands import status
from gpuplane.errors import ExitCode
from gpuplane.topology import load_platform

REPO = Path(__file__).resolve().parents[3]


def test_a_bug_exits_with_its_own_code_and_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*_: object) -> int:
        raise ZeroDivisionError("division by zero deep inside")

    monkeypatch.setattr(status, "run", broken)
    out, err = io.StringIO(), io.StringIO()
    code = cli_main.main(
        ["-f", str(REPO / "platform.yaml"), "status"],
        stdout=out,
        stderr=err,
        env={"GPUPLANE_STATE": str(tmp_path)},
    )
    assert code == ExitCode.INTERNAL_ERROR == 4
    message = err.getvalue()
    assert "Traceback" not in message
    assert "internal error: ZeroDivisionError in 'gpuplane status'" in message
    reports = list((tmp_path / "crash").glob("gpuplane-status-*.log"))
    assert len(reports) == 1
    assert str(reports[0]) in message.replace("\n", "")
    assert "division by zero deep inside" in reports[0].read_text()
    assert "Traceback" in reports[0].read_text()


def test_backend_sim_is_read_as_local_with_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    file = tmp_path / "platform.yaml"
    text = (REPO / "platform.yaml").read_text()
    file.write_text(text.replace("backend: local", "backend: sim"))
    with caplog.at_level("WARNING"):
        platform = load_platform(file)
    assert platform.spec.backend == "local"
    assert "backend 'sim' is deprecated, read as 'local'" in caplog.text


@pytest.mark.parametrize("since", ["0s", "soon"])
def test_a_bad_since_is_named_before_prometheus_is_looked_for(tmp_path: Path, since: str) -> None:
    out, err = io.StringIO(), io.StringIO()
    code = cli_main.main(
        ["-f", str(REPO / "platform.yaml"), "observability", "check", "--live", "--since", since],
        stdout=out,
        stderr=err,
        env={"GPUPLANE_STATE": str(tmp_path)},
    )
    assert code == ExitCode.BAD_INPUT == 2
    assert "--since" in err.getvalue() and repr(since) in err.getvalue()


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (["sim", "demo", "--python", "/nonexistent/python3"], "--python /nonexistent/python3"),
        (["sim", "demo", "--python-path", "/nonexistent/site"], "--python-path /nonexistent/site"),
        (["image", "build", "--services", "--python-path", "/nonexistent/site"],
         "--python-path /nonexistent/site"),
    ],
)  # fmt: skip
def test_a_bad_interpreter_is_named_before_anything_runs(
    tmp_path: Path, args: list[str], named: str
) -> None:
    """The service images' interpreter and its extra site directories are checked first:
    exit 2 naming the flag, and no cluster state is made."""
    out, err = io.StringIO(), io.StringIO()
    code = cli_main.main(
        ["-f", str(REPO / "platform.yaml"), *args],
        stdout=out,
        stderr=err,
        env={"GPUPLANE_STATE": str(tmp_path)},
    )
    assert code == ExitCode.BAD_INPUT == 2, err.getvalue()
    assert named in " ".join(err.getvalue().split())
    assert not any(tmp_path.iterdir())
