"""The activator's process-wide limits on loopback, with real clients and an aiohttp
backend: request heads and bodies held at zero (pipelined ones too) stay inside the input
budget and all of it is given back,
and every one of them arrives whole once the backend wakes; connections past the cap are
answered 503 + Retry-After and closed; a body that stalls closes its connection."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
from collections.abc import AsyncIterator

import pytest
from aiohttp import web

from gpuplane.activator.config import parse_routes
from gpuplane.activator.endpoints import Readiness
from gpuplane.activator.metrics import ActivatorMetrics
from gpuplane.activator.proxy import BackendState, Proxy
from gpuplane.activator.upstream import UpstreamPool
from gpuplane.activator.wire import Listener, ListenerLimits
from tests.unit.activator.proxy_kit import serve


async def digest(request: web.Request) -> web.Response:
    return web.Response(text=hashlib.sha256(await request.read()).hexdigest())


@contextlib.asynccontextmanager
async def activator(
    limits: ListenerLimits, readiness: Readiness
) -> AsyncIterator[tuple[Listener, int]]:
    backend = web.Application(client_max_size=0)
    backend.router.add_post("/{tail:.*}", digest)
    runner, backend_port = await serve(backend)
    entry = {
        "name": "b", "namespace": "n", "deployment": "d", "service": "s",
        "upstream": f"http://127.0.0.1:{backend_port}", "match": {"pathPrefix": "/b/"},
        "stripPrefix": True, "maxHeld": 1000,
    }  # fmt: skip
    routes = parse_routes({"backends": [entry]})

    async def wake(backend: object) -> bool:
        return True

    pool = UpstreamPool()
    states = {"b": BackendState(routes.backends[0], readiness)}
    proxy = Proxy(routes, states, pool, wake=wake, metrics=ActivatorMetrics())
    listener = Listener(proxy.handle, limits)
    port = await listener.start("127.0.0.1", 0)
    try:
        yield listener, port
    finally:
        await listener.stop(grace=0)
        pool.close()
        await runner.cleanup()


def post(body: bytes, path: str = "/b/x") -> bytes:
    head = f"POST {path} HTTP/1.1\r\nHost: a\r\nContent-Length: {len(body)}\r\n\r\n"
    return head.encode() + body


async def read_answers(reader: asyncio.StreamReader, count: int) -> list[bytes]:
    answers = []
    for _ in range(count):
        head = await reader.readuntil(b"\r\n\r\n")
        length = next(
            int(line.split(b":")[1])
            for line in head.lower().split(b"\r\n")
            if line.startswith(b"content-length:")
        )
        answers.append(head.split(b"\r\n", 1)[0] + b" " + await reader.readexactly(length))
    return answers


def test_held_bodies_stay_inside_the_budget_and_all_arrive_after_the_wake() -> None:
    budget = 2 * 1024 * 1024
    body = bytes(range(256)) * 1024  # 256 KiB
    expected = b"HTTP/1.1 200 OK " + hashlib.sha256(body).hexdigest().encode()

    async def scenario() -> tuple[int, list[list[bytes]], int]:
        readiness = Readiness()  # at zero: everything is held
        async with activator(ListenerLimits(input_budget=budget), readiness) as (listener, port):
            connections = [await asyncio.open_connection("127.0.0.1", port) for _ in range(8)]
            for _, writer in connections:
                writer.write(post(body) * 4)  # 4 pipelined requests a connection: 8 MiB
            peak = 0
            for _ in range(40):
                await asyncio.sleep(0.05)
                peak = max(peak, listener.budget.used)
            readiness.replace(
                [{"metadata": {"name": "s"}, "endpoints": [{"addresses": ["127.0.0.1"]}]}]
            )
            answers = [
                await asyncio.wait_for(read_answers(reader, 4), 30) for reader, _ in connections
            ]
            # A connection left half-way through a head gives its bytes back when it goes.
            _, partial = await asyncio.open_connection("127.0.0.1", port)
            partial.write(b"GET /b/x HTTP/1.1\r\nHost: a\r\nX-Half: " + b"y" * 30_000)
            await asyncio.sleep(0.2)
            for _, writer in [*connections, (None, partial)]:
                writer.close()
            await asyncio.sleep(0.3)
            return peak, answers, listener.budget.used

    peak, answers, left = asyncio.run(scenario())
    assert left == 0  # every head and body given back: nothing leaks from the budget
    # One read's worth past the budget at most, never the 8 MiB that was sent.
    assert 0 < peak <= budget + 512 * 1024, peak
    assert answers == [[expected] * 4] * 8  # every body whole: 0 lost


def test_connections_past_the_cap_get_503_and_are_closed() -> None:
    async def scenario() -> bytes:
        async with activator(ListenerLimits(max_connections=2), Readiness()) as (_, port):
            kept = [await asyncio.open_connection("127.0.0.1", port) for _ in range(2)]
            await asyncio.sleep(0.1)
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            answer = await asyncio.wait_for(reader.read(), 5)  # read to the close
            writer.close()
            for _, kept_writer in kept:
                kept_writer.close()
            return answer

    answer = asyncio.run(scenario())
    assert answer.startswith(b"HTTP/1.1 503 Service Unavailable")
    assert b"Retry-After: 1" in answer and b"too many connections" in answer


def test_a_stalled_body_closes_its_connection(caplog: pytest.LogCaptureFixture) -> None:
    async def scenario() -> tuple[bytes, float]:
        readiness = Readiness()
        readiness.ready.set()
        limits = ListenerLimits(body_idle_seconds=0.5)
        async with activator(limits, readiness) as (_, port):
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            head = b"POST /b/x HTTP/1.1\r\nHost: a\r\nContent-Length: 100\r\n\r\n"
            writer.write(head + b"0123456789")  # 10 of 100 bytes, then nothing
            started = asyncio.get_running_loop().time()
            closed = await asyncio.wait_for(reader.read(), 10)
            writer.close()
            return closed, asyncio.get_running_loop().time() - started

    with caplog.at_level(logging.ERROR, logger="gpuplane.activator"):
        closed, took = asyncio.run(scenario())
    assert b"200 OK" not in closed
    assert 0.4 < took < 5.0, took  # the body deadline, not the 75 s idle timeout
    # The client's doing, not an internal error of the activator.
    assert not [r for r in caplog.records if r.name.startswith("gpuplane.activator")]


def test_a_slow_body_that_keeps_sending_is_not_cut() -> None:
    """The deadline is for silence: a byte every 0.2 s for 1.6 s, with a 0.5 s deadline,
    arrives whole and is answered."""

    async def scenario() -> list[bytes]:
        readiness = Readiness()
        readiness.ready.set()
        async with activator(ListenerLimits(body_idle_seconds=0.5), readiness) as (_, port):
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            body = b"x" * 8
            writer.write(b"POST /b/x HTTP/1.1\r\nHost: a\r\nContent-Length: 8\r\n\r\n")
            for byte in body:
                await asyncio.sleep(0.2)
                writer.write(bytes([byte]))
            answers = await asyncio.wait_for(read_answers(reader, 1), 10)
            writer.close()
            return answers

    expected = b"HTTP/1.1 200 OK " + hashlib.sha256(b"x" * 8).hexdigest().encode()
    assert asyncio.run(scenario()) == [expected]
