"""Running the ``go`` command: found on PATH or failing with a clear prerequisite error."""

from __future__ import annotations

import functools
import os
import re
import shutil
import subprocess
from pathlib import Path

from gpuplane.commands import run_command
from gpuplane.errors import PrerequisiteError

MINIMUM_GO = (1, 26)


def go_binary() -> str:
    found = shutil.which("go")
    if found is None:
        raise PrerequisiteError(
            "Go is not installed: gpuplane builds kube-apiserver, etcd and kwok from their "
            f"Go modules and needs Go >= {MINIMUM_GO[0]}.{MINIMUM_GO[1]} on PATH"
        )
    return found


def parse_go_version(output: str) -> tuple[int, int] | None:
    """``go version go1.26.8 linux/amd64`` -> (1, 26)."""
    match = re.search(r"\bgo(\d+)\.(\d+)", output)
    return (int(match.group(1)), int(match.group(2))) if match else None


@functools.cache
def check_go() -> str:
    """The go binary, after checking it is new enough for the wrapper modules."""
    binary = go_binary()
    output = subprocess.run(
        [binary, "version"], capture_output=True, text=True, timeout=30, check=False
    ).stdout
    version = parse_go_version(output)
    if version is None or version < MINIMUM_GO:
        raise PrerequisiteError(
            f"{binary} reports {output.strip()!r}; Go >= {MINIMUM_GO[0]}.{MINIMUM_GO[1]} is needed"
        )
    return binary


def go_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment of every go invocation: static binaries, no toolchain download."""
    env = dict(os.environ)
    env.update({"CGO_ENABLED": "0", "GOTOOLCHAIN": "local", "GOFLAGS": "-buildvcs=false"})
    env.update(extra or {})
    return env


def run_go(args: list[str], *, cwd: Path, timeout: float, env: dict[str, str] | None = None) -> str:
    """Run ``go ARGS`` in ``cwd`` (with ``env``, default ``go_env()``); raise
    OperationError with go's own message on failure."""
    return run_command(
        [check_go(), *args],
        cwd=cwd,
        env=env if env is not None else go_env(),
        timeout=timeout,
        what=f"go {' '.join(args)} in {cwd}",
    )
