"""``gpuplane sim traffic set|list``: drive the sim backend's traffic simulator."""

from __future__ import annotations

import argparse
import json
from typing import Any

from rich.table import Table

from gpuplane.backends.sim.services import running_prometheus_url
from gpuplane.backends.sim.state import SimState
from gpuplane.backends.sim.story import Step, run_story
from gpuplane.backends.sim.traffic_client import TrafficClient, parse_target
from gpuplane.backends.state_root import default_state_root
from gpuplane.cli.backend_choice import load
from gpuplane.cli.context import Context
from gpuplane.errors import BadInputError, ExitCode, PrerequisiteError
from gpuplane.kube import connect
from gpuplane.observability.promql import scalar_or_zero
from gpuplane.toolchain import repo_root


def register(verbs: Any) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = verbs.add_parser(
        "sim", help="sim backend tools: simulated request traffic per Deployment"
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
    if platform.spec.backend != "sim":
        raise BadInputError("gpuplane sim only applies to the sim backend")
    state = SimState(context.state_root() or default_state_root(), platform.name)
    client = TrafficClient(state)
    if args.topic == "demo":
        return demo(context, state, client)
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
    """The story's view of what the sim's Prometheus has scraped."""

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


def demo(context: Context, state: SimState, traffic: TrafficClient) -> int:
    context.console.print("the downscaler story (sim backend; timings from apps/demo/policy.yaml)")

    def say(step: Step) -> None:
        context.console.print(f"  t+{step.seconds:5.1f}s  {step.text}", highlight=False)

    url = running_prometheus_url(state)
    if url is None:
        raise PrerequisiteError(f"the Prometheus of sim cluster {state.name!r} is not running")
    apps = repo_root() / "apps" / "demo"
    steps = run_story(connect(state.kubeconfig), traffic, apps, say, PrometheusSeen(url))
    context.console.print(f"story complete in {steps[-1].seconds:.0f}s", highlight=False)
    return int(ExitCode.OK)
