"""``gpuplane sim traffic set|list``: drive the local backend's traffic simulator."""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import dataclass
from typing import Any

from rich.table import Table

from gpuplane.backends.base import ActivatorAddress, ClusterBackend, HostServices, ImageStore
from gpuplane.cli.backend_choice import host_services, image_store, opened
from gpuplane.cli.context import Context
from gpuplane.cli.python_choice import Interpreter, add_python_option, chosen_interpreter
from gpuplane.errors import BadInputError, ExitCode, PrerequisiteError
from gpuplane.kube import connect
from gpuplane.observability.promql import instant_query, scalar_or_zero
from gpuplane.simulation.chat_wake_story import (
    GPU_MEMORY_QUERY,
    choose_chat_variant,
    run_chat_wake_story,
)
from gpuplane.simulation.demo_story import Step, run_story
from gpuplane.simulation.traffic_client import TrafficClient, parse_target
from gpuplane.simulation.wake_story import choose_variant, run_wake_story
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
    story = topics.add_parser(
        "demo",
        help="the downscaler story: idle GPU inference -> zero -> training -> restored; "
        "where a kubelet node runs, then the real service's zero-loss wake through the activator",
    )
    add_python_option(story, "the real service's image is assembled from (kubelet nodes)")
    story.add_argument(
        "--chat",
        action="store_true",
        help="play the chat model's streamed wake on the app node too (by default only on a "
        "real gpu node); its CPU image needs llama-cpp-python (make llm)",
    )
    parser.set_defaults(run=run)
    return parser


def run(args: argparse.Namespace, context: Context) -> int:
    interpreter = chosen_interpreter(args) if args.topic == "demo" else None  # bad input first
    backend, resolved = opened(args, context)
    platform = resolved.platform
    services = host_services(backend, "sim")
    client = TrafficClient(services.traffic_url(platform))
    if interpreter is not None:
        stage = Stage(backend, services, image_store(backend, "sim demo"), resolved.lines())
        return demo(context, stage, platform, client, interpreter, chat_on_app_node=args.chat)
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


@dataclass(frozen=True)
class Stage:
    """What the demo plays on: the cluster, the services beside it, its image store."""

    backend: ClusterBackend
    services: HostServices
    images: ImageStore
    runtimes: list[str]  # what runtime: auto resolved to, and why


class BackendActivator:
    """The wake act's activator: a host process the backend supervises."""

    def __init__(self, services: HostServices, platform: Platform) -> None:
        self.services, self.platform = services, platform

    def start(self, backends: list[dict[str, Any]], limits: dict[str, float]) -> ActivatorAddress:
        return self.services.start_activator(self.platform, backends, limits)

    def stop(self) -> None:
        self.services.stop_activator(self.platform)


def demo(
    context: Context,
    stage: Stage,
    platform: Platform,
    traffic: TrafficClient,
    interpreter: Interpreter,
    *,
    chat_on_app_node: bool,
) -> int:
    """Act one (the downscaler story), then where a kubelet node runs, act two (the zero-loss
    wake) and act three (the chat model's streamed wake: on a real gpu node, or on the app
    node when asked); the service images are assembled from ``interpreter``."""
    python, extra = interpreter.python, interpreter.site_dirs
    context.console.print(
        "the downscaler story (local backend; timings from apps/demo/policy.yaml)"
    )
    for node in stage.backend.status(platform).nodes:
        what = "simulated (KWOK)" if node.simulated else f"real kubelet node ({node.runtime})"
        context.console.print(f"  node {node.name} ({node.role}): {what}", highlight=False)
    for line in stage.runtimes:
        context.console.print(f"  {line}", highlight=False)

    def say(step: Step) -> None:
        context.console.print(f"  t+{step.seconds:5.1f}s  {step.text}", highlight=False)

    url = stage.services.prometheus_url(platform)
    if url is None:
        raise PrerequisiteError(f"the Prometheus of local cluster {platform.name!r} is not running")
    apps = repo_root() / "apps" / "demo"
    client = connect(stage.backend.kubeconfig(platform))
    if platform.kubelet_gpu_node is not None:
        # The traffic simulator simulates only KWOK nodes' GPUs: on a real gpu node the
        # story's GPU signal and panels read NVML through gpu-exporter.
        context.reporter().step(f"gpu-exporter's image from {python}, imported into the node")
        store = stage.images
        exporter = store.build_service_images(platform, python, extra, kinds=("gpu-exporter",))
        store.load_images(platform, exporter)
        addresses = stage.services.start_gpu_exporter(platform)
        context.console.print(
            f"  GPU metrics of the real gpu node: gpu-exporter (NVML) at {', '.join(addresses)}, "
            "scraped by Prometheus",
            highlight=False,
        )
    steps = run_story(client, traffic, apps, say, PrometheusSeen(url))
    context.console.print(f"story complete in {steps[-1].seconds:.0f}s", highlight=False)
    variant = choose_variant(platform, repo_root() / "apps" / "inference")
    if variant is None:
        context.console.print(
            "the zero-loss wake (the real service behind the activator): not run, every node "
            "is KWOK here (it needs a kubelet node: runtime auto on a host that can run one, "
            "or runtime: kubelet)",
            highlight=False,
        )
        return chat_act(context, stage, platform, interpreter, on_app_node=chat_on_app_node)
    context.console.print(
        f"the zero-loss wake: the real service on {variant.node}, behind the activator",
        highlight=False,
    )
    context.reporter().step(f"the inference image from {python}, imported into the node")
    images = stage.images.build_service_images(platform, python, extra, kinds=("inference",))
    stage.images.load_images(platform, images)
    start = time.monotonic()

    def note(text: str) -> None:
        say(Step(time.monotonic() - start, text))

    run_wake_story(
        client, repo_root() / "apps", variant, BackendActivator(stage.services, platform), note
    )
    context.console.print(f"wake act complete in {time.monotonic() - start:.0f}s", highlight=False)
    return chat_act(context, stage, platform, interpreter, on_app_node=chat_on_app_node)


def chat_act(
    context: Context,
    stage: Stage,
    platform: Platform,
    interpreter: Interpreter,
    *,
    on_app_node: bool,
) -> int:
    """Act three: the chat model woken from zero by a streamed chat, where it plays."""
    apps = repo_root() / "apps"
    variant, why_not = choose_chat_variant(platform, apps / "llm", on_app_node=on_app_node)
    if variant is None:
        context.console.print(
            f"the streamed wake (the chat model behind the activator): not run, {why_not}",
            highlight=False,
        )
        return int(ExitCode.OK)
    context.console.print(
        f"the streamed wake: the chat model on {variant.node}, behind the activator",
        highlight=False,
    )
    python, extra = interpreter.python, interpreter.site_dirs
    context.reporter().step(f"the chat model's image from {python}, imported into the node")
    try:
        images = stage.images.build_service_images(platform, python, extra, kinds=("llm",))
    except PrerequisiteError as missing:
        if on_app_node:
            raise  # asked for with --chat: what it lacks is an error
        # Played by default on a gpu node: an interpreter without the chat model's
        # packages skips the act (saying so) rather than failing the two acts before it.
        context.console.print(f"  not run: {missing}", highlight=False)
        return int(ExitCode.OK)
    stage.images.load_images(platform, images)
    start = time.monotonic()

    def note(text: str) -> None:
        context.console.print(f"  t+{time.monotonic() - start:5.1f}s  {text}", highlight=False)

    client = connect(stage.backend.kubeconfig(platform))
    activator = BackendActivator(stage.services, platform)
    url = stage.services.prometheus_url(platform)

    def gpu_memory() -> float | None:
        """The real GPU's memory in use, as gpu-exporter reports it through Prometheus."""
        answer = instant_query(str(url), GPU_MEMORY_QUERY).get("result") or []
        return float(answer[0]["value"][1]) if answer else None

    # Only a real gpu node has gpu-exporter scraped: elsewhere there is nothing to read.
    on_gpu = url is not None and variant.manifest == "server-gpu.yaml"
    reader = gpu_memory if on_gpu else None
    run_chat_wake_story(client, apps, variant, activator, note, gpu_memory=reader)
    context.console.print(f"chat act complete in {time.monotonic() - start:.0f}s", highlight=False)
    return int(ExitCode.OK)
