"""An endpoint that stops listening while still listed as ready, as a pod does when a scale
to zero races a request (on loopback, real aiohttp servers): once the endpoint leaves the
ready set the request is held and answered after the wake, not refused; an endpoint that
keeps refusing while listed ready is a 503 after a short grace, not a hold."""

from __future__ import annotations

import asyncio
import socket

import aiohttp
import pytest
from aiohttp import web

from gpuplane.activator import proxy as proxy_module
from gpuplane.activator.endpoints import Readiness
from tests.unit.activator.proxy_kit import proxy_in_front, serve


def unused_port() -> int:
    """A loopback port nothing listens on: connecting to it is refused."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def echo(request: web.Request) -> web.Response:
    return web.Response(body=b"answered " + await request.read())


async def scenario(port: int, readiness: Readiness, meanwhile: object) -> tuple[int, bytes, int]:
    """The proxy in front of 127.0.0.1:``port``; one POST through it while ``meanwhile``
    runs. Returns the answer's status and body, and how many wake requests were asked."""
    wakes: list[str] = []
    async with proxy_in_front(f"http://127.0.0.1:{port}", readiness, wakes) as proxy_url:
        background = asyncio.create_task(meanwhile())  # type: ignore[operator]
        try:
            async with (
                aiohttp.ClientSession() as client,
                client.post(f"{proxy_url}/b/x", data=b"late") as answer,
            ):
                return answer.status, await answer.read(), len(wakes)
        finally:
            await background


def test_a_request_racing_a_scale_to_zero_is_held_and_answered() -> None:
    port = unused_port()

    async def run() -> tuple[int, bytes, int]:
        readiness = Readiness()
        readiness.ready.set()  # the EndpointSlice still lists the pod
        runners: list[web.AppRunner] = []

        async def scale_to_zero_then_wake() -> None:
            await asyncio.sleep(0.3)  # the request meets a refused connection meanwhile
            readiness.ready.clear()  # the pod leaves the ready endpoints
            await asyncio.sleep(0.3)  # held now, a wake asked
            app = web.Application()
            app.router.add_post("/x", echo)
            runners.append((await serve(app, port))[0])  # the woken pod listens
            readiness.ready.set()

        try:
            return await scenario(port, readiness, scale_to_zero_then_wake)
        finally:
            for runner in runners:
                await runner.cleanup()

    status, body, wakes = asyncio.run(run())
    assert (status, body) == (200, b"answered late")
    assert wakes == 1


def test_an_endpoint_that_keeps_refusing_while_ready_is_a_503(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(proxy_module, "REFUSED_GRACE_SECONDS", 0.5)
    port = unused_port()

    async def run() -> tuple[int, bytes, int]:
        readiness = Readiness()
        readiness.ready.set()

        async def nothing() -> None:
            return None

        return await scenario(port, readiness, nothing)

    status, body, wakes = asyncio.run(run())
    assert status == 503, body
    assert f"127.0.0.1:{port}".encode() in body, body  # the error names the endpoint
    assert wakes == 0
