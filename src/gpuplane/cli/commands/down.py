"""``gpuplane down``: delete the cluster and everything ``up`` made for it."""

from __future__ import annotations

import argparse
from typing import Any

from gpuplane.cli.backend_choice import add_backend_option, opened
from gpuplane.cli.context import Context
from gpuplane.errors import ExitCode


def register(verbs: Any) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = verbs.add_parser("down", help="delete the cluster")
    add_backend_option(parser)
    parser.set_defaults(run=run)
    return parser


def run(args: argparse.Namespace, context: Context) -> int:
    backend, resolved = opened(args, context)
    platform = resolved.platform
    removed = backend.down(platform, context.reporter())
    if removed:
        context.console.print(f"cluster {platform.name!r} deleted")
    else:
        context.console.print(f"cluster {platform.name!r} does not exist; nothing to delete")
    return int(ExitCode.OK)
