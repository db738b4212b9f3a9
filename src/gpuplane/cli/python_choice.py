"""Which interpreter gpuplane's service images are assembled from (``--python``): this one
by default; on a GPU host, one whose environment has torch. ``--python-path`` adds site
directories beside it (wheels installed with pip --target, as the model's on a host
where nothing can be installed into that interpreter)."""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
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


@dataclass(frozen=True)
class Interpreter:
    """What the service images are assembled from."""

    python: Path
    site_dirs: tuple[Path, ...] = ()


def chosen_interpreter(args: argparse.Namespace) -> Interpreter:
    """``--python`` and its ``--python-path`` directories; BadInputError naming the flag
    when one does not exist."""
    python: Path = args.python
    if not python.is_file():
        raise BadInputError(f"--python {python}: no such interpreter")
    directories: list[Path] = args.python_path
    for directory in directories:
        if not directory.is_dir():
            raise BadInputError(f"--python-path {directory}: no such directory")
    return Interpreter(python, tuple(directories))
