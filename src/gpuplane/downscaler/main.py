"""``gpuplane-downscaler``: run the operator (in a cluster, or beside the local backend)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import socket
import sys
from collections.abc import Sequence

import kopf
from lightkube import ConfigError as KubeConfigError
from prometheus_client import start_http_server

from gpuplane.downscaler import handlers  # noqa: F401 - importing registers the kopf handlers
from gpuplane.downscaler.actuator import Actuator
from gpuplane.downscaler.deployment_cache import DeploymentCache
from gpuplane.downscaler.handlers import OperatorContext, WakeRequests, wake_watch
from gpuplane.downscaler.kube_api import KubeApi
from gpuplane.downscaler.kube_http import KubeHttp
from gpuplane.downscaler.leader import LeaderElector
from gpuplane.downscaler.metrics import OperatorMetrics
from gpuplane.downscaler.ratelimit import RequestLimits
from gpuplane.downscaler.wake import WakeTracker
from gpuplane.shared.kube_session import KubeSession, UnsupportedCredentials, current_context

log = logging.getLogger("gpuplane.downscaler")
EXIT_LOST_LEADERSHIP = 4


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="gpuplane-downscaler", description=__doc__)
    parser.add_argument("--kubeconfig", help="out-of-cluster kubeconfig (default: in-cluster)")
    parser.add_argument("--prometheus-url", default="http://127.0.0.1:9090")
    parser.add_argument(
        "--allow-prometheus-url",
        action="append",
        default=[],
        metavar="URL",
        help="another Prometheus a policy's spec.prometheus.url may name (repeatable); "
        "any other URL makes the policy invalid",
    )
    parser.add_argument("--metrics-address", default="127.0.0.1:8081", help="host:port of /metrics")
    parser.add_argument("--health-address", default="127.0.0.1:8080", help="host:port of /healthz")
    parser.add_argument("--namespace", action="append", default=[], help="watch only these")
    parser.add_argument(
        "--lease-namespace", default=os.environ.get("POD_NAMESPACE", "gpuplane-system")
    )
    parser.add_argument("--lease-name", default="gpuplane-downscaler")
    parser.add_argument("--no-leader-election", action="store_true")
    parser.add_argument(
        "--identity",
        default=f"{socket.gethostname()}-{os.getpid()}",
        help="leader election identity (a restarted process with the same one resumes at once)",
    )
    # client-go's QPS/Burst, for this operator's writes: 1,000 actions take about
    # burst/qps seconds less than 1,000/qps; raise them on a big API server.
    parser.add_argument("--kube-qps", type=float, default=300.0, help="writes per second")
    parser.add_argument("--kube-burst", type=int, default=600, help="writes at once (bucket)")
    parser.add_argument(
        "--max-in-flight",
        type=int,
        default=20,
        help="API requests in flight at most, and connections kept (default: 20)",
    )
    parser.add_argument(
        "--verbose", action="store_true", help="DEBUG, and kopf's per-event handler lines"
    )
    return parser.parse_args(argv)


def _split(address: str) -> tuple[str, int]:
    host, _, port = address.rpartition(":")
    return host or "127.0.0.1", int(port)


async def run(args: argparse.Namespace) -> int:
    if args.kubeconfig:
        os.environ["KUBECONFIG"] = args.kubeconfig  # kopf's login reads it from there
    metrics = OperatorMetrics()
    # Every request to the API server, the Deployment watch included, over one aiohttp
    # session (gpuplane.shared.kube_session).
    try:
        kube = KubeSession(current_context(args.kubeconfig), connections=args.max_in_flight)
    except (KubeConfigError, UnsupportedCredentials) as error:
        log.error("%s", error)  # noqa: TRY400 - the message says it all; no traceback
        return 2
    http = KubeHttp(kube, metrics)
    limits = RequestLimits(args.kube_qps, args.kube_burst, args.max_in_flight)
    api = KubeApi(http, limits)
    wakes = WakeTracker()
    requested = WakeRequests()
    cache = DeploymentCache(kube, args.namespace, wake_watch(wakes, metrics, requested))
    host, port = _split(args.metrics_address)
    start_http_server(port, host, registry=metrics.registry)
    lost = asyncio.Event()
    holder: asyncio.Task[None] | None = None
    if not args.no_leader_election:
        elector = LeaderElector(http, args.lease_namespace, args.lease_name, args.identity)
        await elector.acquire()
        holder = asyncio.create_task(elector.hold(lost))
    following = asyncio.create_task(cache.run())
    context = OperatorContext(
        api,
        Actuator(api, metrics),
        cache,
        metrics,
        args.prometheus_url,
        wakes=wakes,
        requested=requested,
        allowed_prometheus=frozenset(args.allow_prometheus_url),
    )
    stop = asyncio.Event()
    health_host, health_port = _split(args.health_address)
    operator = asyncio.create_task(
        kopf.operator(
            standalone=True,
            clusterwide=not args.namespace,
            namespaces=args.namespace,
            liveness_endpoint=f"http://{health_host}:{health_port}/healthz",
            memo=kopf.Memo(context=context),
            stop_flag=stop,
        )
    )
    lost_wait = asyncio.create_task(lost.wait())
    await asyncio.wait({operator, lost_wait}, return_when=asyncio.FIRST_COMPLETED)
    code = 0
    if lost.is_set():
        code = EXIT_LOST_LEADERSHIP
        stop.set()
    with contextlib.suppress(asyncio.CancelledError):
        await operator
    for task in (holder, lost_wait, following):
        if task is not None:
            task.cancel()
    for prometheus in context.clients.values():
        await prometheus.close()
    await http.close()
    return code


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    for noisy in ("aiohttp.access",):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    if not args.verbose:
        # kopf says "Handler ... succeeded." for every Deployment event of the cluster:
        # thousands of lines that hide the one per action and the problems.
        logging.getLogger("kopf.objects").setLevel(logging.WARNING)
    sys.exit(asyncio.run(run(args)))


if __name__ == "__main__":
    main()
