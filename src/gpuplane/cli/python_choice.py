"""Which interpreter gpuplane's service images are assembled from (``--python``): this one
by default; on a GPU host, one whose environment has torch."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from gpuplane.errors import BadInputError


def add_python_option(parser: argparse.ArgumentParser, what: str) -> None:
    parser.add_argument(
        "--python",
        type=Path,
        default=Path(sys.executable),
        help=f"the interpreter whose environment {what} (default: this one; on a GPU host, "
        "one with torch)",
    )


def chosen_python(args: argparse.Namespace) -> Path:
    python: Path = args.python
    if not python.is_file():
        raise BadInputError(f"--python {python}: no such interpreter")
    return python
