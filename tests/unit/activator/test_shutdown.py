"""SIGTERM with requests held at zero: the activator's shutdown order (main's) answers
every held request 503 + Retry-After at once, well inside the grace, instead of closing
its connection without an answer when the grace ends; a request being forwarded still
gets its answer."""

from __future__ import annotations

import asyncio
import time

import aiohttp
from aiohttp import web

from gpuplane.activator.config import parse_routes
from gpuplane.activator.endpoints import Readiness
from gpuplane.activator.metrics import ActivatorMetrics
from gpuplane.activator.proxy import BackendState, Proxy
from gpuplane.activator.upstream import UpstreamPool
from gpuplane.activator.wire import Listener
from tests.unit.activator.proxy_kit import serve

GRACE = 10.0


def routes_to(upstream: str, name: str, prefix: str) -> dict[str, object]:
    return {
        "name": name, "namespace": "n", "deployment": name, "service": name,
        "upstream": upstream, "match": {"pathPrefix": prefix}, "stripPrefix": True,
    }  # fmt: skip


def test_held_requests_get_503_on_shutdown_and_forwarded_ones_finish() -> None:
    async def scenario() -> tuple[list[tuple[int, str]], tuple[int, str], float]:
        async def slow(request: web.Request) -> web.Response:
            await asyncio.sleep(1.0)
            return web.Response(text="done")

        backend = web.Application()
        backend.router.add_get("/{tail:.*}", slow)
        runner, port = await serve(backend)
        upstream = f"http://127.0.0.1:{port}"
        routes = parse_routes(
            {"backends": [routes_to(upstream, "zero", "/zero/"), routes_to(upstream, "up", "/up/")]}
        )
        ready = Readiness()
        ready.ready.set()
        states = {
            "zero": BackendState(routes.backends[0], Readiness()),  # at zero: held
            "up": BackendState(routes.backends[1], ready),
        }

        async def wake(backend: object) -> bool:
            return True

        pool = UpstreamPool()
        proxy = Proxy(routes, states, pool, wake=wake, metrics=ActivatorMetrics())
        listener = Listener(proxy.handle)
        url = f"http://127.0.0.1:{await listener.start('127.0.0.1', 0)}"

        async def get(http: aiohttp.ClientSession, path: str) -> tuple[int, str]:
            async with http.get(url + path) as answer:
                return answer.status, answer.headers.get("Retry-After", "")

        async with aiohttp.ClientSession() as http:
            held = [asyncio.create_task(get(http, f"/zero/{i}")) for i in range(5)]
            forwarded = asyncio.create_task(get(http, "/up/x"))
            await asyncio.sleep(0.3)
            assert states["zero"].held == 5
            started = time.monotonic()
            proxy.stop_holding()  # main's order: held requests first, then the listener
            await listener.stop(grace=GRACE)
            took = time.monotonic() - started
            answers = [await task for task in held]
            done = await forwarded
        pool.close()
        await runner.cleanup()
        return answers, done, took

    answers, forwarded, took = asyncio.run(asyncio.wait_for(scenario(), 30))
    assert answers == [(503, "5")] * 5
    assert forwarded == (200, "")
    assert took < 3.0  # not the grace: the held ones were answered at once
