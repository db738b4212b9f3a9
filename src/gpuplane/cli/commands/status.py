"""``gpuplane status``: nodes, components, and what is simulated."""

from __future__ import annotations

import argparse
from typing import Any

from gpuplane.cli.backend_choice import add_backend_option, opened
from gpuplane.cli.context import Context
from gpuplane.cli.render import print_json, print_status, to_jsonable
from gpuplane.errors import ExitCode


def register(verbs: Any) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = verbs.add_parser("status", help="show the cluster")
    add_backend_option(parser)
    parser.add_argument("-o", "--output", choices=["table", "json"], default="table")
    parser.set_defaults(run=run)
    return parser


def run(args: argparse.Namespace, context: Context) -> int:
    backend, resolved = opened(args, context)
    platform = resolved.platform
    status = backend.status(platform)
    if args.output == "json":
        print_json(context, {**to_jsonable(status), "runtimes": to_jsonable(resolved.choices)})
    else:
        print_status(context, status, resolved.lines())
    # Not running is an answer, not a failure of the command: exit 1 lets scripts test it.
    return int(ExitCode.OK if status.running else ExitCode.CHECKS_FAILED)
