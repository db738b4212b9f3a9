"""``gpuplane sim traffic set|list``: drive the local backend's traffic simulator."""

from __future__ import annotations

import argparse
import json
from typing import Any

from rich.table import Table

from gpuplane.backends.local import LocalBackend
from gpuplane.cli.backend_choice import backend_for, load
from gpuplane.cli.context import Context
from gpuplane.errors import BadInputError, ExitCode, PrerequisiteError
from gpuplane.kube import connect
from gpuplane.observability.promql import scalar_or_zero
from gpuplane.simulation.demo_story import Step, run_story
from gpuplane.simulation.traffic_client import TrafficClient, parse_target
from gpuplane.toolchain import repo_root
from gpuplane.topology import Platform


def register(verbs: Any) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = verbs.add_parser(
        "sim", help="local backend simulation: simulated request traffic, the demo story"
    )
    topics = parser.add_subparsers(dest="topic", required=True, metavar="TOPIC")
    traffic = topics.add_parser("traffic", help="set or list simulated request rates")
    actions = traffic.add_subparsers(dest="action", required=True, metavar="ACTION")
    setter = actions.add_parser("set", help="set NAMESPACE/DEPLOYMENT to RPS requests per second")
    setter.add_argument("target", metavar="NAMESPACE/DEPLOYMENT")
    setter.add_argument("rps", type=float)
    lister = actions.add_parser("list", help="list the rates")
    lister.add_argument("-o", "--output", choices=["table", "json"], default="table")
    topics.add_parser(
        "demo", help="the downscaler story: idle GPU inference -> zero -> training -> restored"
    )
    parser.set_defaults(run=run)
    return parser


def run(args: argparse.Namespace, context: Context) -> int:
    platform = load(args)
    backend = backend_for(platform, context)
    if not isinstance(backend, LocalBackend):
        raise BadInputError("gpuplane sim only applies to the local backend")
    client = TrafficClient(backend.traffic_url(platform))
    if args.topic == "demo":
        return demo(context, backend, platform, client)
    if args.action == "set":
        namespace, deployment = parse_target(args.target)
        if args.rps < 0:
            raise BadInputError(f"RPS must not be negative (got {args.rps:g})")
        client.set_rate(namespace, deployment, args.rps)
        context.console.print(f"{namespace}/{deployment}: {args.rps:g} requests/s", highlight=False)
        return int(ExitCode.OK)
    rows = client.rates()
    if getattr(args, "output", "table") == "json":
        context.stdout.write(json.dumps(rows, indent=2) + "\n")
        return int(ExitCode.OK)
    table = Table("NAMESPACE", "DEPLOYMENT", "RPS", "READY", box=None)
    for row in rows:
        table.add_row(
            row["namespace"], row["deployment"], f"{row['rps']:g}", "yes" if row["ready"] else "no"
        )
    context.console.print(table)
    return int(ExitCode.OK)


class PrometheusSeen:
    """The story's view of what the local cluster's Prometheus has scraped."""

    def __init__(self, url: str) -> None:
        self.url = url

    def wake_totals(self) -> tuple[float, float]:
        return (
            scalar_or_zero(self.url, "sum(gpuplane_downscaler_wake_seconds_count)"),
            scalar_or_zero(self.url, "sum(gpuplane_downscaler_wake_seconds_sum)"),
        )

    def gpu_holder_seen(self, namespace: str, deployment: str) -> bool:
        selector = f'namespace="{namespace}", pod=~"{deployment}-.+"'
        return scalar_or_zero(self.url, f"count(DCGM_FI_DEV_GPU_UTIL{{{selector}}})") > 0


def demo(
    context: Context, backend: LocalBackend, platform: Platform, traffic: TrafficClient
) -> int:
    context.console.print(
        "the downscaler story (local backend; timings from apps/demo/policy.yaml)"
    )
    for node in backend.status(platform).nodes:
        what = "simulated (KWOK)" if node.simulated else f"real kubelet node ({node.runtime})"
        context.console.print(f"  node {node.name} ({node.role}): {what}", highlight=False)

    def say(step: Step) -> None:
        context.console.print(f"  t+{step.seconds:5.1f}s  {step.text}", highlight=False)

    url = backend.prometheus_url(platform)
    if url is None:
        raise PrerequisiteError(f"the Prometheus of local cluster {platform.name!r} is not running")
    apps = repo_root() / "apps" / "demo"
    client = connect(backend.kubeconfig(platform))
    steps = run_story(client, traffic, apps, say, PrometheusSeen(url))
    context.console.print(f"story complete in {steps[-1].seconds:.0f}s", highlight=False)
    return int(ExitCode.OK)
