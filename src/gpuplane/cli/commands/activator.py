"""``gpuplane activator``: the zero-loss wake proxy (holds requests while a Deployment is
at zero, asks for a wake, forwards when ready). Its image runs
``python -m gpuplane.activator.main``; see docs/activator.md."""

from __future__ import annotations

import argparse
from typing import Any

from gpuplane.activator.flags import add_arguments
from gpuplane.cli.context import Context


def register(verbs: Any) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = verbs.add_parser(
        "activator", help="hold requests for Deployments at zero, wake them, forward when ready"
    )
    add_arguments(parser)
    parser.set_defaults(run=run)
    return parser


def run(args: argparse.Namespace, context: Context) -> int:
    # Imported on use: the proxy (aiohttp, lightkube) is not every verb's cost.
    from gpuplane.activator.main import run as run_activator  # noqa: PLC0415

    return run_activator(args)
