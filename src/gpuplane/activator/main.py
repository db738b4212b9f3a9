"""The activator's process. Exit codes: 0 on a signal, 2 bad flags or routes file, 3 no
cluster credentials."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Callable

from aiohttp import web
from lightkube import ConfigError as KubeConfigError
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from gpuplane.activator.config import ConfigError, Routes, load_routes
from gpuplane.activator.endpoints import EndpointWatch, Readiness
from gpuplane.activator.flags import add_arguments
from gpuplane.activator.metrics import ActivatorMetrics
from gpuplane.activator.proxy import BackendState, Proxy
from gpuplane.activator.upstream import UpstreamPool
from gpuplane.activator.waker import Waker
from gpuplane.activator.wire import Listener, ListenerLimits
from gpuplane.shared.kube_session import KubeSession, UnsupportedCredentials, current_context
from gpuplane.shared.stop_signals import stop_event

log = logging.getLogger("gpuplane.activator")
STOP_GRACE_SECONDS = 10.0


def _split(address: str) -> tuple[str, int]:
    host, _, port = address.rpartition(":")
    return host.strip("[]") or "127.0.0.1", int(port)


async def serve(args: argparse.Namespace, routes: Routes, kube: KubeSession) -> int:
    metrics = ActivatorMetrics()
    states: dict[str, BackendState] = {}
    watches = []
    for backend in routes.backends:
        gauge = metrics.ready_endpoints.labels(backend.namespace, backend.deployment)
        # The series exists from the start: "no requests yet" is a rate of 0 (Idle to a
        # DownscalePolicy), not an absent series (Unknown, which never scales down).
        metrics.requests.labels(backend.namespace, backend.deployment, "200")
        readiness = Readiness(gauge.set)
        states[backend.name] = BackendState(backend, readiness)
        watches.append(EndpointWatch(kube, backend, readiness))
    following = [asyncio.create_task(watch.run()) for watch in watches]
    pool = UpstreamPool()
    proxy = Proxy(routes, states, pool, wake=Waker(kube, metrics), metrics=metrics)
    limits = ListenerLimits(
        max_connections=args.max_connections,
        input_budget=args.input_budget_mib * 1024 * 1024,
        body_idle_seconds=args.body_idle_seconds,
    )
    listener = Listener(proxy.handle, limits)
    status = web.Application()

    async def metrics_page(request: web.Request) -> web.Response:
        body = generate_latest(metrics.registry)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def healthz(request: web.Request) -> web.Response:
        synced = all(watch.synced.is_set() for watch in watches)
        return web.json_response({"synced": synced}, status=200 if synced else 503)

    status.router.add_get("/metrics", metrics_page)
    status.router.add_get("/healthz", healthz)
    status_runner = web.AppRunner(status, access_log=None)
    await status_runner.setup()
    await listener.start(*_split(args.listen))
    await web.TCPSite(status_runner, *_split(args.metrics_address)).start()
    names = ", ".join(b.name for b in routes.backends)
    log.info("proxying %s on %s; metrics on %s", names, args.listen, args.metrics_address)
    stop = stop_event()
    try:
        await stop.wait()
    finally:
        # Held requests first: each is answered 503 + Retry-After now (a held one may wait
        # minutes, longer than a pod's grace). Requests being forwarded get the grace; the
        # endpoint watches stop last, so no forwarded request loses its endpoints.
        proxy.stop_holding()
        await listener.stop(grace=STOP_GRACE_SECONDS)
        for task in following:
            task.cancel()
        pool.close()
        await status_runner.cleanup()
        await kube.close()
    return 0


def run(args: argparse.Namespace) -> int:
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    for flag in ("max_connections", "input_budget_mib", "body_idle_seconds"):
        if getattr(args, flag) <= 0:
            print(f"activator: --{flag.replace('_', '-')} must be above 0", file=sys.stderr)
            return 2
    try:
        routes = load_routes(args.config)
    except ConfigError as error:
        print(f"activator: {error}", file=sys.stderr)
        return 2
    try:
        kube = KubeSession(current_context(str(args.kubeconfig) if args.kubeconfig else None))
    except (KubeConfigError, UnsupportedCredentials, OSError) as error:
        print(f"activator: no cluster credentials: {error}", file=sys.stderr)
        return 3
    with asyncio.Runner(loop_factory=_loop_factory()) as runner:
        return runner.run(serve(args, routes, kube))


def _loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop where installed (the image has it): a proxy's cost is its event loop's."""
    try:
        import uvloop  # noqa: PLC0415
    except ImportError:
        return None
    factory: Callable[[], asyncio.AbstractEventLoop] = uvloop.new_event_loop
    return factory


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="gpuplane activator", description=__doc__)
    add_arguments(parser)
    sys.exit(run(parser.parse_args(argv)))


if __name__ == "__main__":
    main()
