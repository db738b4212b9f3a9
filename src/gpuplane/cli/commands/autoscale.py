"""``gpuplane autoscale up|status|down``: the custom metrics API behind the HPA.

On the local backend the Prometheus adapter (built from its Go module on first use) runs
beside the cluster and serves ``custom.metrics.k8s.io`` from the cluster's Prometheus; the
HPA controller of the real kube-controller-manager reads it. ``status`` exits 0 when the
adapter runs and every APIService is Available, 1 otherwise.
"""

from __future__ import annotations

import argparse
from typing import Any

from rich.table import Table

from gpuplane.backends.base import AutoscaleHost, ComponentStatus
from gpuplane.cli.backend_choice import add_backend_option, opened
from gpuplane.cli.context import Context
from gpuplane.cli.render import print_json, to_jsonable
from gpuplane.errors import BadInputError, ExitCode
from gpuplane.topology import Platform


def register(verbs: Any) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = verbs.add_parser(
        "autoscale", help="the custom metrics API the HPA scales on (local backend)"
    )
    add_backend_option(parser)
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    actions.add_parser("up", help="start the Prometheus adapter and register its APIServices")
    status = actions.add_parser("status", help="the adapter and its APIServices")
    status.add_argument("-o", "--output", choices=["table", "json"], default="table")
    actions.add_parser("down", help="stop the adapter; unregister its APIServices and RBAC")
    parser.set_defaults(run=run)
    return parser


def _host(args: argparse.Namespace, context: Context) -> tuple[AutoscaleHost, Platform]:
    backend, resolved = opened(args, context)
    host = backend.autoscaling()
    if host is None:
        raise BadInputError(
            f"gpuplane autoscale: the {backend.name} backend runs no metrics adapter of its "
            "own; install it in the cluster (docs/autoscaling.md)"
        )
    return host, resolved.platform


def run(args: argparse.Namespace, context: Context) -> int:
    host, platform = _host(args, context)
    if args.action in ("up", "down"):
        act = host.autoscale_up if args.action == "up" else host.autoscale_down
        for change in act(platform, context.reporter()):
            context.err_console.print(change, highlight=False)
        if args.action == "down":
            return int(ExitCode.OK)
    rows = host.autoscale_status(platform)
    healthy = bool(rows) and all(row.running for row in rows)
    if getattr(args, "output", "table") == "json":
        print_json(context, {"components": to_jsonable(rows), "available": healthy})
    else:
        print_components(context, rows)
    return int(ExitCode.OK if healthy else ExitCode.CHECKS_FAILED)


def print_components(context: Context, rows: tuple[ComponentStatus, ...]) -> None:
    table = Table("COMPONENT", "UP", "DETAIL", box=None)
    for row in rows:
        table.add_row(row.name, "yes" if row.running else "NO", row.detail)
    context.console.print(table)
