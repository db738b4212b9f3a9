"""The activator probes a woken pod itself while requests are held (``probePath``), on
loopback with real aiohttp servers: a starting endpoint that answers its readiness path
takes the held request before Kubernetes lists it as ready; a terminating one never does;
Kubernetes' own word takes over from the probe."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from prometheus_client import generate_latest

from gpuplane.activator.config import ConfigError, parse_routes
from gpuplane.activator.early_ready import answers_ready, is_ok_status_line
from gpuplane.activator.endpoints import Readiness, pending_addresses
from gpuplane.activator.metrics import ActivatorMetrics
from gpuplane.metrics_text import sample_sum
from tests.unit.activator.proxy_kit import proxy_in_front, serve
from tests.unit.activator.test_endpoint_going_away import unused_port


def endpoint(address: str, **conditions: bool) -> dict[str, Any]:
    return {"addresses": [address], "conditions": conditions}


def slice_with(*endpoints: dict[str, Any]) -> dict[str, Any]:
    return {"metadata": {"name": "s-1"}, "endpoints": list(endpoints)}


def test_only_a_starting_endpoint_is_pending() -> None:
    body = slice_with(
        endpoint("10.0.0.1", ready=False),  # starting
        endpoint("10.0.0.2", ready=False, serving=True, terminating=True),  # leaving
        endpoint("10.0.0.3", ready=True),
        {"addresses": [], "conditions": {"ready": False}},
    )
    assert pending_addresses(body) == ["10.0.0.1"]


def test_a_probed_endpoint_is_ready_until_kubernetes_says_otherwise() -> None:
    async def follow() -> list[object]:
        readiness = Readiness()
        seen: list[object] = []
        readiness.replace([slice_with(endpoint("10.0.0.1", ready=False))])
        readiness.mark_probed("10.0.0.9")  # not listed: ignored
        seen += [readiness.ready.is_set(), readiness.pending()]
        readiness.mark_probed("10.0.0.1")
        seen += [readiness.ready.is_set(), readiness.pending(), readiness.next_address()]
        # Kubernetes catches up: listed once, as ready.
        readiness.apply("MODIFIED", slice_with(endpoint("10.0.0.1", ready=True)))
        seen += [readiness.count]
        # Then it leaves: terminating, never ready again through the old probe.
        leaving = endpoint("10.0.0.1", ready=False, terminating=True)
        readiness.apply("MODIFIED", slice_with(leaving))
        seen += [readiness.ready.is_set(), readiness.pending()]
        return seen

    assert asyncio.run(follow()) == [False, ["10.0.0.1"], True, [], "10.0.0.1", 1, False, []]


def test_probe_paths_need_endpoint_upstreams_and_a_path() -> None:
    entry = {"name": "b", "namespace": "n", "deployment": "d", "service": "s",
             "upstream": "endpoints:8000", "match": {"pathPrefix": "/b/"}}  # fmt: skip
    (backend,) = parse_routes({"backends": [{**entry, "probePath": "/readyz"}]}).backends
    assert backend.probe_path == "/readyz"
    for change, fragment in (
        ({"probePath": "readyz"}, "probePath 'readyz' must be a path"),
        ({"probePath": "/ready z"}, "must be a path"),
        ({"probePath": "/readyz", "upstream": "http://s.n.svc:8000"}, "needs upstream endpoints:"),
    ):
        with pytest.raises(ConfigError, match=fragment):
            parse_routes({"backends": [{**entry, **change}]}, "routes.yaml")


def test_the_probe_wants_a_200_status_line() -> None:
    assert is_ok_status_line(b"HTTP/1.1 200 OK\r\n")
    assert not is_ok_status_line(b"HTTP/1.1 503 Service Unavailable\r\n")
    assert not is_ok_status_line(b"SSH-2.0-OpenSSH\r\n")
    assert not asyncio.run(answers_ready("127.0.0.1", unused_port(), "/readyz"))

    async def long_status_line() -> bool:
        async def talk(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            writer.write(b"HTTP/1.1 200 " + b"x" * 4096 + b"\r\n\r\n")
            await writer.drain()
            writer.close()

        server = await asyncio.start_server(talk, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        async with server:
            return await answers_ready("127.0.0.1", port, "/readyz")

    assert not asyncio.run(long_status_line())

    async def silent_server() -> bool:
        async def never_answers(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await reader.read(1024)  # takes the request, says nothing, keeps the connection
            await asyncio.sleep(1)  # past the probe's timeout
            writer.close()

        server = await asyncio.start_server(never_answers, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        async with server:
            return await answers_ready("127.0.0.1", port, "/readyz", timeout=0.2)

    assert not asyncio.run(silent_server())


def starting_service() -> tuple[web.Application, asyncio.Event]:
    """A service that listens at once and is ready when the event is set (as ours do)."""
    ready = asyncio.Event()
    app = web.Application()

    async def readyz(request: web.Request) -> web.Response:
        return web.Response(status=200 if ready.is_set() else 503)

    async def answer(request: web.Request) -> web.Response:
        return web.Response(body=b"answered " + await request.read())

    app.router.add_get("/readyz", readyz)
    app.router.add_post("/x", answer)
    return app, ready


async def one_held_request(proxy_url: str, meanwhile: asyncio.Task[None]) -> tuple[int, bytes]:
    try:
        async with (
            aiohttp.ClientSession() as client,
            client.post(f"{proxy_url}/b/x", data=b"early") as answer,
        ):
            return answer.status, await answer.read()
    finally:
        await meanwhile


def test_a_held_request_goes_to_the_pod_that_answers_its_probe_before_kubernetes() -> None:
    async def run() -> tuple[int, bytes, float, bool]:
        app, ready = starting_service()
        runner, port = await serve(app)
        readiness = Readiness()
        # Kubernetes lists the woken pod, not ready, and never changes its mind in this test.
        readiness.replace([slice_with(endpoint("127.0.0.1", ready=False))])
        metrics = ActivatorMetrics()

        async def the_service_becomes_ready() -> None:
            await asyncio.sleep(0.3)  # held, probed and refused meanwhile
            ready.set()

        try:
            async with proxy_in_front(
                f"endpoints:{port}",
                readiness,
                metrics=metrics,
                probePath="/readyz",
                maxHoldSeconds=5,
            ) as url:
                status, body = await one_held_request(
                    url, asyncio.create_task(the_service_becomes_ready())
                )
        finally:
            await runner.cleanup()
        text = generate_latest(metrics.registry).decode()
        return (
            status,
            body,
            sample_sum(text, "gpuplane_activator_probed_ready_total"),
            (readiness.pending() == []),
        )

    status, body, probed, taken = asyncio.run(run())
    assert (status, body) == (200, b"answered early")
    assert probed == 1.0 and taken


def test_a_terminating_pod_that_still_answers_is_never_probed_into_use() -> None:
    async def run() -> tuple[int, bytes]:
        app, ready = starting_service()
        ready.set()  # it would answer its probe: it is leaving all the same
        runner, port = await serve(app)
        readiness = Readiness()
        leaving = endpoint("127.0.0.1", ready=False, serving=True, terminating=True)
        readiness.replace([slice_with(leaving)])

        async def nothing() -> None:
            return None

        try:
            async with proxy_in_front(
                f"endpoints:{port}", readiness, probePath="/readyz", maxHoldSeconds=0.5
            ) as url:
                return await one_held_request(url, asyncio.create_task(nothing()))
        finally:
            await runner.cleanup()

    status, body = asyncio.run(run())
    assert status == 503, body
    assert b"no ready endpoint" in body
