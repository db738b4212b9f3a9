"""``gpuplane status``: nodes, components, and what is simulated."""

from __future__ import annotations

import argparse
from typing import Any

from gpuplane.cli.backend_choice import add_backend_option, backend_for, load
from gpuplane.cli.context import Context
from gpuplane.cli.render import print_json, print_status
from gpuplane.errors import ExitCode


def register(verbs: Any) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = verbs.add_parser("status", help="show the cluster")
    add_backend_option(parser)
    parser.add_argument("-o", "--output", choices=["table", "json"], default="table")
    parser.set_defaults(run=run)
    return parser


def run(args: argparse.Namespace, context: Context) -> int:
    platform = load(args)
    status = backend_for(platform, context).status(platform)
    if args.output == "json":
        print_json(context, status)
    else:
        print_status(context, status)
    # Not running is an answer, not a failure of the command: exit 1 lets scripts test it.
    return int(ExitCode.OK if status.running else ExitCode.CHECKS_FAILED)
