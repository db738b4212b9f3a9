"""The activator's proxy on loopback, as its main wires it (its own listener and upstream
pool, one routed backend ``/b/`` → ``upstream``), for tests that put real aiohttp servers
behind it."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TypeVar

from aiohttp import web

from gpuplane.activator.config import parse_routes
from gpuplane.activator.endpoints import Readiness
from gpuplane.activator.metrics import ActivatorMetrics
from gpuplane.activator.proxy import BackendState, Proxy
from gpuplane.activator.upstream import UpstreamPool
from gpuplane.activator.wire import Listener

T = TypeVar("T")


async def serve(app: web.Application, port: int = 0) -> tuple[web.AppRunner, int]:
    """``app`` on 127.0.0.1:``port`` (0: any free port); its runner and port."""
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", port)
    await site.start()
    return runner, int(site._server.sockets[0].getsockname()[1])  # type: ignore[union-attr]


@contextlib.asynccontextmanager
async def proxy_in_front(
    upstream: str,
    readiness: Readiness,
    wakes: list[str] | None = None,
    metrics: ActivatorMetrics | None = None,
    **route: object,
) -> AsyncIterator[str]:
    """The proxy routing ``/b/`` to ``upstream``, ready as ``readiness`` says; each wake it
    asks for is appended to ``wakes``; ``route``: more keys of the routes file's entry.
    Yields the proxy's URL."""
    entry = {
        "name": "b", "namespace": "n", "deployment": "d", "service": "s",
        "upstream": upstream, "match": {"pathPrefix": "/b/"}, "stripPrefix": True, **route,
    }  # fmt: skip
    routes = parse_routes({"backends": [entry]})
    asked = wakes if wakes is not None else []

    async def wake(backend: object) -> bool:
        asked.append(str(backend))
        return True

    pool = UpstreamPool()
    proxy = Proxy(
        routes, {"b": BackendState(routes.backends[0], readiness)}, pool,
        wake=wake, metrics=metrics or ActivatorMetrics(),
    )  # fmt: skip
    listener = Listener(proxy.handle)
    port = await listener.start("127.0.0.1", 0)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await listener.stop(grace=0)
        pool.close()


@contextlib.asynccontextmanager
async def ready_proxy(upstream: str) -> AsyncIterator[str]:
    """The proxy in front of ``upstream``, listed as ready from the start."""
    readiness = Readiness()
    readiness.ready.set()
    async with proxy_in_front(upstream, readiness) as url:
        yield url


async def through_proxy(
    backend: web.Application, send: Callable[[str], Awaitable[T]], *, host: str = "127.0.0.1"
) -> T:
    """Run ``backend`` on ``host`` (a name where cookie jars keep cookies, an IP where they
    do not) and the ready proxy in front of it; ``send(proxy_url)``."""
    runner, port = await serve(backend)
    try:
        async with ready_proxy(f"http://{host}:{port}") as url:
            return await send(url)
    finally:
        await runner.cleanup()
