"""Request bodies through the proxy, on loopback with real aiohttp servers: a small body of
known length arrives whole with its length; a chunked body streams, so the backend reads
its first chunk while the client still holds back the rest."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import aiohttp
from aiohttp import web

from gpuplane.activator.config import parse_routes
from gpuplane.activator.endpoints import Readiness
from gpuplane.activator.metrics import ActivatorMetrics
from gpuplane.activator.proxy import BackendState, Proxy


async def serve(app: web.Application) -> tuple[web.AppRunner, str]:
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    return runner, f"http://127.0.0.1:{port}"


async def through_proxy(backend: web.Application, send: object) -> object:
    """Run ``backend`` and the proxy in front of it; ``send(session, proxy_url)``."""
    backend_runner, backend_url = await serve(backend)
    entry = {
        "name": "b", "namespace": "n", "deployment": "d", "service": "s",
        "upstream": backend_url, "match": {"pathPrefix": "/b/"}, "stripPrefix": True,
    }  # fmt: skip
    routes = parse_routes({"backends": [entry]})
    readiness = Readiness()
    readiness.ready.set()

    async def no_wake(_: object) -> bool:
        return True

    async with aiohttp.ClientSession(auto_decompress=False) as upstream:
        proxy = Proxy(
            routes, {"b": BackendState(routes.backends[0], readiness)}, upstream,
            wake=no_wake, metrics=ActivatorMetrics(),
        )  # fmt: skip
        app = web.Application(client_max_size=0)
        app.router.add_route("*", "/{tail:.*}", proxy.handle)
        proxy_runner, proxy_url = await serve(app)
        try:
            async with aiohttp.ClientSession() as client:
                return await send(client, proxy_url)  # type: ignore[operator]
        finally:
            await proxy_runner.cleanup()
            await backend_runner.cleanup()


def test_a_small_body_arrives_whole_with_its_length() -> None:
    seen: dict[str, object] = {}

    async def backend(request: web.Request) -> web.Response:
        seen["length"] = request.content_length
        seen["chunked"] = request.headers.get("Transfer-Encoding")
        seen["body"] = await request.read()
        return web.Response(body=b"ok")

    async def send(client: aiohttp.ClientSession, url: str) -> int:
        async with client.post(f"{url}/b/x", data=b'{"input": ["a"]}') as answer:
            await answer.read()
            return answer.status

    app = web.Application()
    app.router.add_post("/x", backend)
    assert asyncio.run(through_proxy(app, send)) == 200
    assert seen == {"length": 16, "chunked": None, "body": b'{"input": ["a"]}'}


def test_a_chunked_body_streams_to_the_backend() -> None:
    events: list[str] = []

    async def scenario() -> object:
        got_first = asyncio.Event()

        async def backend(request: web.Request) -> web.Response:
            first = await request.content.readany()
            events.append(f"backend read {first!r}")
            got_first.set()
            rest = await request.content.read()
            return web.Response(body=first + rest)

        async def body() -> AsyncIterator[bytes]:
            yield b"first "
            # The rest waits until the backend has the first chunk: a proxy that buffered
            # the body would wait forever here (and the test would time out).
            await asyncio.wait_for(got_first.wait(), 10)
            events.append("client sends the rest")
            yield b"rest"

        async def send(client: aiohttp.ClientSession, url: str) -> bytes:
            async with client.post(f"{url}/b/x", data=body()) as answer:
                return await answer.read()

        app = web.Application()
        app.router.add_post("/x", backend)
        return await through_proxy(app, send)

    assert asyncio.run(scenario()) == b"first rest"
    assert events == ["backend read b'first '", "client sends the rest"]
