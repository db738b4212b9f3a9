"""``gpuplane gitops up|status|sync|down``: Argo CD syncing the platform from git.

On the local backend Argo CD runs beside the cluster (built from its Go module) and
syncs from a git server on loopback that serves this checkout's committed HEAD (or
``--repo``). ``status`` exits 0 when every Application that can sync here is Synced and
Healthy, 1 otherwise; an Application whose source is unreachable offline is never
counted green, and is named as such.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

from rich.table import Table

from gpuplane.backends.base import ClusterBackend, GitOpsHost, GitOpsStatus
from gpuplane.cli.backend_choice import add_backend_option, opened
from gpuplane.cli.context import Context
from gpuplane.cli.render import print_json, to_jsonable
from gpuplane.errors import BadInputError, ExitCode
from gpuplane.toolchain import repo_root
from gpuplane.topology import Platform


def register(verbs: Any) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = verbs.add_parser(
        "gitops", help="Argo CD syncing the platform from git (local backend)"
    )
    add_backend_option(parser)
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    up = actions.add_parser(
        "up", help="start Argo CD, redis and a loopback git server; apply the root Applications"
    )
    up.add_argument(
        "--repo",
        type=Path,
        default=None,
        help="the git repository to sync from (default: this checkout; its committed HEAD)",
    )
    _add_wait(up, 180.0)
    status = actions.add_parser("status", help="Argo CD's processes and every Application")
    status.add_argument("-o", "--output", choices=["table", "json"], default="table")
    sync = actions.add_parser("sync", help="refresh from git and sync now (default: the roots)")
    sync.add_argument("application", nargs="?", default=None, metavar="APP")
    _add_wait(sync, 120.0)
    actions.add_parser("down", help="stop Argo CD; remove its CRDs, objects and data")
    parser.set_defaults(run=run)
    return parser


def _add_wait(parser: argparse.ArgumentParser, default: float) -> None:
    parser.add_argument(
        "--wait",
        type=float,
        default=default,
        metavar="SECONDS",
        help=f"wait this long for the Applications to be Synced and Healthy (0: do not "
        f"wait; default {default:.0f})",
    )


def _host(
    args: argparse.Namespace, context: Context
) -> tuple[GitOpsHost, Platform, ClusterBackend]:
    backend, resolved = opened(args, context)
    host = backend.gitops()
    if host is None:
        raise BadInputError(
            f"gpuplane gitops: the {backend.name} backend runs no Argo CD of its own; "
            "install it in the cluster (gitops/README.md, Bootstrap)"
        )
    return host, resolved.platform, backend


def _load_service_images(backend: ClusterBackend, platform: Platform, context: Context) -> None:
    """The synced workloads' images into the kubelet nodes first: their pods pull from
    nowhere else (offline), and an image missing would leave an app Progressing."""
    store = backend.images()
    if store is None or not platform.kubelet_nodes:
        return
    python = Path(sys.executable)
    context.reporter().step(f"the services' images (from {python}) into the kubelet nodes")
    images = [*store.build_images(platform), *store.build_service_images(platform, python)]
    store.load_images(platform, images)


def run(args: argparse.Namespace, context: Context) -> int:
    host, platform, backend = _host(args, context)
    if args.action == "up":
        repository = (args.repo or repo_root()).resolve()
        _load_service_images(backend, platform, context)
        for change in host.gitops_up(platform, repository, context.reporter()):
            context.err_console.print(change, highlight=False)
        return _settle(context, host, platform, args.wait)
    if args.action == "sync":
        for name in host.gitops_sync(platform, args.application):
            context.err_console.print(f"sync of {name} requested", highlight=False)
        return _settle(context, host, platform, args.wait)
    if args.action == "down":
        for change in host.gitops_down(platform, context.reporter()):
            context.err_console.print(change, highlight=False)
        return int(ExitCode.OK)
    status = host.gitops_status(platform)
    if args.output == "json":
        print_json(context, {**_jsonable(status), "converged": converged(status)})
    else:
        print_gitops(context, status)
    return int(ExitCode.OK if converged(status) else ExitCode.CHECKS_FAILED)


def converged(status: GitOpsStatus) -> bool:
    """Every process runs and every Application that can sync here is green."""
    reachable = [a for a in status.applications if not a.note.startswith("source unreachable")]
    return (
        bool(status.components)
        and all(c.running for c in status.components)
        and bool(reachable)
        and all(a.green for a in reachable)
    )


def _settle(context: Context, host: GitOpsHost, platform: Platform, wait: float) -> int:
    deadline = time.monotonic() + wait
    status = host.gitops_status(platform)
    while wait > 0 and not converged(status) and time.monotonic() < deadline:
        time.sleep(2.0)
        status = host.gitops_status(platform)
    print_gitops(context, status)
    return int(ExitCode.OK if converged(status) else ExitCode.CHECKS_FAILED)


def _jsonable(status: GitOpsStatus) -> dict[str, Any]:
    value: dict[str, Any] = to_jsonable(status)
    for row, app in zip(value["applications"], status.applications, strict=True):
        row["green"] = app.green
    return value


def print_gitops(context: Context, status: GitOpsStatus) -> None:
    context.console.print(f"source: {status.repository or '-'} (HEAD)", highlight=False)
    parts = Table("COMPONENT", "RUNNING", "DETAIL", box=None)
    for component in status.components:
        parts.add_row(component.name, "yes" if component.running else "NO", component.detail)
    context.console.print(parts)
    apps = Table("APP", "SYNC", "HEALTH", "REVISION", "MESSAGE", box=None)
    for app in status.applications:
        apps.add_row(app.name, app.sync, app.health, app.revision or "-", app.message or "-")
    context.console.print(apps)
    for app in status.applications:
        if app.note:
            context.console.print(f"[yellow]{app.name}:[/] {app.note}", highlight=False)
