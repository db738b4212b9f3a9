"""``gpuplane kubeconfig``: print the path of the cluster's private kubeconfig."""

from __future__ import annotations

import argparse
from typing import Any

from gpuplane.cli.backend_choice import add_backend_option, backend_for, load
from gpuplane.cli.context import Context
from gpuplane.errors import ExitCode, PrerequisiteError


def register(verbs: Any) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = verbs.add_parser(
        "kubeconfig", help="print the kubeconfig path (KUBECONFIG=$(gpuplane kubeconfig))"
    )
    add_backend_option(parser)
    parser.set_defaults(run=run)
    return parser


def run(args: argparse.Namespace, context: Context) -> int:
    platform = load(args)
    path = backend_for(platform, context).kubeconfig(platform)
    if not path.is_file():
        raise PrerequisiteError(f"cluster {platform.name!r} is not up (no {path}); run gpuplane up")
    context.stdout.write(f"{path}\n")
    return int(ExitCode.OK)
