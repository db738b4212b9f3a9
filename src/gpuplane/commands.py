"""The one way gpuplane runs an external program to completion: an argument list, a
timeout, an explicit environment, and a failure that names the command and quotes what
it printed (never ``shell=True``)."""

from __future__ import annotations

import subprocess
from pathlib import Path

from gpuplane.errors import OperationError

# The most of a failed command's output an error message quotes (its tail).
QUOTED_OUTPUT_CHARS = 4000


def run_command(
    argv: list[str],
    *,
    timeout: float,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
    what: str | None = None,
    hint: str = "",
) -> str:
    """Run ``argv``; return its stdout, or raise OperationError naming ``what`` failed.

    ``what`` defaults to the program's name and its arguments; ``hint`` is appended to a
    failure (where its logs are, say).
    """
    label = what or " ".join(Path(argv[0]).name if i == 0 else a for i, a in enumerate(argv))
    suffix = f"\n{hint}" if hint else ""
    try:
        result = subprocess.run(
            argv, env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout, check=False
        )
    except subprocess.TimeoutExpired as error:
        raise OperationError(f"{label} timed out after {timeout:.0f}s{suffix}") from error
    except OSError as error:
        raise OperationError(f"{label} could not start: {error}{suffix}") from error
    if result.returncode != 0:
        output = (result.stderr or result.stdout).strip()[-QUOTED_OUTPUT_CHARS:]
        raise OperationError(f"{label} failed (exit {result.returncode}):\n{output}{suffix}")
    return result.stdout
