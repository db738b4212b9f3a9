"""``gpuplane up``: create the cluster platform.yaml declares, or converge it."""

from __future__ import annotations

import argparse
from typing import Any

from gpuplane.cli.backend_choice import add_backend_option, backend_for, load
from gpuplane.cli.context import Context
from gpuplane.cli.render import print_status
from gpuplane.doctor import Level, collect_facts, evaluate
from gpuplane.doctor.kubelet_host import kubelet_host_checks
from gpuplane.errors import ExitCode, PrerequisiteError
from gpuplane.topology import Platform


def require_gpu_host() -> None:
    """The k3d backend needs a GPU host: doctor first, and stop before creating anything."""
    failed = [check for check in evaluate(collect_facts()) if check.level is Level.FAIL]
    if failed:
        reasons = "; ".join(f"{check.id}: {check.summary}" for check in failed)
        raise PrerequisiteError(
            f"this host cannot run the k3d backend ({reasons}); see gpuplane doctor, "
            "or use --backend local"
        )


def require_kubelet_host(platform: Platform) -> None:
    """Kubelet nodes need root, cgroups, overlayfs (and NVML on a gpu node): checked
    before anything is built or started."""
    failed = [check for check in kubelet_host_checks(platform) if check.level is Level.FAIL]
    if failed:
        names = ", ".join(node.name for node in platform.kubelet_nodes)
        reasons = "; ".join(f"{c.summary}: {c.cause} (fix: {c.fix})" for c in failed)
        raise PrerequisiteError(f"kubelet node {names!r} cannot run on this host: {reasons}")


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
    platform = load(args)
    if platform.spec.backend == "k3d":
        require_gpu_host()
    if platform.kubelet_nodes:
        require_kubelet_host(platform)
    backend = backend_for(platform, context, services=not args.no_services)
    result = backend.up(platform, context.reporter())
    if result.created:
        context.console.print(f"cluster {platform.name!r} is up ({platform.spec.backend} backend)")
    elif result.changes:
        context.console.print(f"cluster {platform.name!r} was running; converged:")
        for change in result.changes:
            context.console.print(f"  - {change}", highlight=False)
    else:
        context.console.print(
            f"cluster {platform.name!r} is already up and matches {args.platform_file}; "
            "nothing changed"
        )
    print_status(context, backend.status(platform))
    context.console.print(f"kubeconfig: {result.kubeconfig}", highlight=False)
    return int(ExitCode.OK)
