"""Which interpreter gpuplane's service images are assembled from (``--python``): this one
by default; on a GPU host, one whose environment has torch. ``--python-path`` adds site
directories beside it (wheels installed with pip --target, as the model's on a host
where nothing can be installed into that interpreter)."""

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
    parser.add_argument(
        "--python-path",
        type=Path,
        action="append",
        default=[],
        metavar="DIR",
        help="extra site directory for --python (wheels installed with pip --target)",
    )


def chosen_python(args: argparse.Namespace) -> Path:
    python: Path = args.python
    if not python.is_file():
        raise BadInputError(f"--python {python}: no such interpreter")
    return python


def chosen_python_path(args: argparse.Namespace) -> tuple[Path, ...]:
    directories: list[Path] = args.python_path
    for directory in directories:
        if not directory.is_dir():
            raise BadInputError(f"--python-path {directory}: no such directory")
    return tuple(directories)
