"""``gpuplane up``: create the cluster platform.yaml declares, or converge it."""

from __future__ import annotations

import argparse
from typing import Any

from gpuplane.cli.backend_choice import add_backend_option, opened
from gpuplane.cli.context import Context
from gpuplane.cli.render import print_status
from gpuplane.errors import ExitCode


def register(verbs: Any) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = verbs.add_parser("up", help="create or converge the cluster")
    add_backend_option(parser)
    parser.add_argument(
        "--no-services",
        action="store_true",
        help="local backend: do not start Prometheus, the traffic simulator and the "
        "downscaler (a host that only runs the platform's nodes)",
    )
    parser.set_defaults(run=run)
    return parser


def run(args: argparse.Namespace, context: Context) -> int:
    backend, resolved = opened(args, context, run_services=not args.no_services)
    platform = resolved.platform
    # The backend's own pre-flight (doctor's host checks) runs first inside up.
    result = backend.up(resolved, context.reporter())
    if result.created:
        context.console.print(f"cluster {platform.name!r} is up ({backend.name} backend)")
    elif result.changes:
        context.console.print(f"cluster {platform.name!r} was running; converged:")
        for change in result.changes:
            context.console.print(f"  - {change}", highlight=False)
    else:
        context.console.print(
            f"cluster {platform.name!r} is already up and matches {args.platform_file}; "
            "nothing changed"
        )
    print_status(context, backend.status(platform), resolved.lines())
    context.console.print(f"kubeconfig: {result.kubeconfig}", highlight=False)
    return int(ExitCode.OK)
