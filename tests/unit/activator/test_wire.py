"""HTTP/1.1 through the activator's own wire (loopback, real aiohttp backends, clients that are
aiohttp or a raw socket where a library would hide what is on the wire): keep-alive both
ways, pipelining, HEAD and 204, the target as sent, big bodies both ways, 100-continue, an
HTTP/1.0 client, bad and upgrade requests, idle connections, a kept-alive upstream
connection the backend closed, a backend that answers early or dies mid-answer; hostile
input: an endless header cut at the head limit (431), forged forwarding headers replaced,
Connection-listed headers dropped, two Host headers refused."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from gpuplane.activator import wire
from gpuplane.activator.forward import WHOLE_BODY_BYTES
from tests.unit.activator.proxy_kit import ready_proxy, through_proxy

Send = Callable[[str], Awaitable[Any]]


def through(app: web.Application, send: Send) -> Any:
    """``send(proxy_url)`` with the ready proxy in front of ``app``."""
    return asyncio.run(asyncio.wait_for(through_proxy(app, send), 20))


async def raw(url: str, payload: bytes, *, then: bytes = b"", after: bytes = b"") -> bytes:
    """``payload`` on one connection; when ``after`` is seen, ``then`` is sent too. Everything
    read until the proxy closes the connection (or 3 s of silence)."""
    host, port = url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    writer.write(payload)
    received = b""
    try:
        while True:
            data = await asyncio.wait_for(reader.read(65536), 3)
            if not data:
                break
            received += data
            if after and after in received and then:
                writer.write(then)
                then = b""
    except TimeoutError:
        pass
    writer.close()
    return received


def echo_app() -> web.Application:
    async def echo(request: web.Request) -> web.Response:
        body = await request.read()
        peer = request.transport.get_extra_info("peername")[1] if request.transport else 0
        return web.Response(
            body=body or request.raw_path.encode(), headers={"X-Peer-Port": str(peer)}
        )

    app = web.Application(client_max_size=0)
    app.router.add_route("*", "/{tail:.*}", echo)
    return app


def test_keep_alive_both_ways_and_the_target_as_sent() -> None:
    async def send(url: str) -> list[tuple[int, bytes, str]]:
        answers = []
        async with aiohttp.ClientSession() as client:
            for path in ("/b/x%2Fy?a=1&b=%20", "/b/x", "/b/z?q"):
                async with client.get(f"{url}{path}", allow_redirects=False) as answer:
                    body = await answer.read()
                    answers.append((answer.status, body, answer.headers["X-Peer-Port"]))
        return answers

    answers = through(echo_app(), send)
    assert [body for _, body, _ in answers] == [b"/x%2Fy?a=1&b=%20", b"/x", b"/z?q"]
    # One upstream connection carried all three: the pool reuses it.
    assert len({peer for _, _, peer in answers}) == 1


def test_pipelined_requests_are_answered_in_order() -> None:
    # More than the connection queues before it stops reading: all are still answered.
    count = 3 * wire.MAX_PIPELINED
    many = b"".join(b"GET /b/%d HTTP/1.1\r\nHost: a\r\n\r\n" % n for n in range(count))
    many += b"GET /b/last HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"
    received = through(echo_app(), lambda url: raw(url, many))
    assert received.count(b"HTTP/1.1 200 OK") == count + 1
    bodies = [answer.rsplit(b"\r\n\r\n", 1)[1] for answer in received.split(b"HTTP/1.1 ")[1:]]
    assert bodies == [b"/%d" % n for n in range(count)] + [b"/last"]


def test_head_and_204_have_no_body_and_the_connection_goes_on() -> None:
    async def nothing(request: web.Request) -> web.Response:
        return web.Response(status=204)

    async def page(request: web.Request) -> web.Response:
        return web.Response(body=b"x" * 1000)

    app = web.Application()
    app.router.add_get("/page", page)  # aiohttp answers HEAD from the GET handler
    app.router.add_post("/nothing", nothing)
    payload = (
        b"HEAD /b/page HTTP/1.1\r\nHost: a\r\n\r\n"
        b"POST /b/nothing HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\n\r\nhi"
        b"GET /b/page HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"
    )
    received = through(app, lambda url: raw(url, payload))
    head, rest = received.split(b"HTTP/1.1 204", 1)
    assert b"Content-Length: 1000\r\n" in head and head.endswith(b"\r\n\r\n")  # no body
    empty, last = rest.split(b"HTTP/1.1 200 OK", 1)
    assert b"Content-Length" not in empty and b"Transfer-Encoding" not in empty
    assert last.endswith(b"\r\n\r\n" + b"x" * 1000)


def test_big_bodies_both_ways_arrive_whole() -> None:
    big = bytes(range(256)) * (4 * WHOLE_BODY_BYTES // 256)

    async def send(url: str) -> tuple[int, bytes]:
        async with aiohttp.ClientSession() as client, client.put(f"{url}/b/x", data=big) as a:
            return a.status, await a.read()

    assert through(echo_app(), send) == (200, big)


def test_expect_100_continue_gets_its_continue_and_the_body_arrives() -> None:
    head = b"POST /b/x HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n"  # noqa: E501
    received = through(
        echo_app(), lambda url: raw(url, head, then=b"hello", after=b"100 Continue\r\n\r\n")
    )
    assert received.startswith(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK")
    assert received.endswith(b"\r\n\r\nhello")


def test_an_http_1_0_client_gets_a_streamed_answer_ended_by_the_close() -> None:
    async def stream(request: web.Request) -> web.StreamResponse:
        answer = web.StreamResponse()
        await answer.prepare(request)
        for part in (b"one ", b"two"):
            await answer.write(part)
        await answer.write_eof()
        return answer

    app = web.Application()
    app.router.add_get("/s", stream)
    received = through(app, lambda url: raw(url, b"GET /b/s HTTP/1.0\r\nHost: a\r\n\r\n"))
    head, body = received.split(b"\r\n\r\n", 1)
    assert b"Transfer-Encoding" not in head and b"Connection: close" in head
    assert body == b"one two"


def test_bad_requests_and_websocket_upgrades_are_refused_other_upgrades_ignored() -> None:
    bad = through(echo_app(), lambda url: raw(url, b"GET /b/x HTTP/1.1\r\nHost a\r\n\r\n"))
    assert bad.startswith(b"HTTP/1.1 400 Bad Request") and b"malformed request" in bad
    websocket = b"GET /b/x HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n"
    refused = through(echo_app(), lambda url: raw(url, websocket))
    assert refused.startswith(b"HTTP/1.1 501 Not Implemented") and b"WebSocket" in refused
    # An h2c upgrade (curl --http2 on http://) is served as HTTP/1.1, and the connection
    # goes on with the next request.
    h2c = (
        b"GET /b/first HTTP/1.1\r\nHost: a\r\nConnection: Upgrade, HTTP2-Settings\r\n"
        b"Upgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQAAP__\r\n\r\n"
        b"GET /b/second HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"
    )
    served = through(echo_app(), lambda url: raw(url, h2c))
    assert served.count(b"HTTP/1.1 200 OK") == 2 and b"101" not in served
    assert served.index(b"/first") < served.index(b"/second")


async def one_answer_then_close(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """A backend that answers one request per connection and then closes it silently, as a
    server does with a connection idle past its keep-alive: the second request on it meets
    the close with no answer."""
    head = await reader.readuntil(b"\r\n\r\n")
    for line in head.lower().split(b"\r\n"):
        if line.startswith(b"content-length:"):
            await reader.readexactly(int(line.split(b":")[1]))
    writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
    await writer.drain()
    await reader.readuntil(b"\r\n\r\n")  # the next request on this connection: no answer
    writer.close()


def test_a_kept_alive_connection_the_backend_closed_is_retried_only_when_safe() -> None:
    async def send() -> list[int]:
        server = await asyncio.start_server(one_answer_then_close, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        codes = []
        try:
            async with (
                ready_proxy(f"http://127.0.0.1:{port}") as proxy,
                aiohttp.ClientSession() as client,
            ):
                for method in ("GET", "GET", "POST"):
                    body = b"p" if method == "POST" else None
                    async with client.request(method, f"{proxy}/b/x", data=body) as answer:
                        codes.append(answer.status)
        finally:
            server.close()
        return codes

    # The second GET meets the close and is sent again on a new connection; the POST meets
    # it too, and is not repeated (the backend may have acted on it): 502.
    assert asyncio.run(asyncio.wait_for(send(), 20)) == [200, 200, 502]


def test_a_backend_that_answers_before_reading_the_body_is_relayed() -> None:
    async def too_big(request: web.Request) -> web.Response:
        return web.Response(status=413, body=b"too big")

    app = web.Application()
    app.router.add_post("/x", too_big)

    async def send(url: str) -> tuple[int, bytes]:
        async def endless() -> Any:
            for _ in range(200):
                yield b"x" * 65536
                await asyncio.sleep(0.01)

        async with aiohttp.ClientSession() as client:
            try:
                async with client.post(f"{url}/b/x", data=endless()) as answer:
                    return answer.status, await answer.read()
            except aiohttp.ClientError as error:  # the proxy closes: the rest is unread
                return 0, str(error).encode()

    status, body = through(app, send)
    assert (status, body) == (413, b"too big")


def test_a_backend_that_dies_mid_answer_cuts_the_client_off() -> None:
    async def dying(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nfirst\r\n")
        await writer.drain()
        writer.close()

    async def send() -> tuple[bytes, bool]:
        server = await asyncio.start_server(dying, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        try:
            async with ready_proxy(f"http://127.0.0.1:{port}") as proxy:
                received = await raw(proxy, b"GET /b/x HTTP/1.1\r\nHost: a\r\n\r\n")
        finally:
            server.close()
        return received, received.endswith(b"0\r\n\r\n")

    received, ended = asyncio.run(asyncio.wait_for(send(), 20))
    assert b"5\r\nfirst\r\n" in received
    assert not ended  # no end-of-body marker: the client knows the answer is cut


def test_idle_and_half_sent_connections_are_closed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(wire, "IDLE_SECONDS", 0.3)

    async def send(url: str) -> tuple[bytes, bytes, float]:
        started = time.monotonic()
        # A head never finished (a slow or stuck client): closed, nothing answered.
        half = await raw(url, b"GET /b/x HTTP/1.1\r\nHost: a\r\n")
        # A whole request answered, then nothing: closed after the idle time.
        kept = await raw(url, b"GET /b/x HTTP/1.1\r\nHost: a\r\n\r\n")
        return half, kept, time.monotonic() - started

    half, kept, took = through(echo_app(), send)
    assert half == b""
    assert kept.startswith(b"HTTP/1.1 200 OK") and kept.endswith(b"\r\n\r\n/x")
    assert took < 3  # both closed by the proxy, neither waited out raw()'s 3 s of silence


def headers_app() -> web.Application:
    """Answers with the request's headers as the backend saw them, one per line."""

    async def show(request: web.Request) -> web.Response:
        lines = [f"{name.decode()}: {value.decode()}" for name, value in request.raw_headers]
        return web.Response(text="\n".join(lines))

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", show)
    return app


def test_an_unfinished_header_is_cut_at_the_head_limit() -> None:
    """A header value that never ends is refused once the head passes 64 KiB, not read
    into memory without end (64 MiB once took the process from 23 to 139 MiB)."""
    endless = b"GET /b/x HTTP/1.1\r\nHost: a\r\nX-Big: " + b"y" * (4 * 1024 * 1024)
    answer = through(echo_app(), lambda url: raw(url, endless))
    assert answer.startswith(b"HTTP/1.1 431 Request Header Fields Too Large"), answer[:80]
    assert b"over 65536 bytes" in answer
    complete = b"GET /b/x HTTP/1.1\r\nHost: a\r\nX-Big: " + b"y" * 70_000 + b"\r\n\r\n"
    also = through(echo_app(), lambda url: raw(url, complete))
    assert also.startswith(b"HTTP/1.1 431 "), also[:80]


def test_forwarding_headers_are_ours_and_connection_listed_ones_end_here() -> None:
    request = (
        b"GET /b/x HTTP/1.1\r\nHost: a\r\nX-Forwarded-For: 6.6.6.6\r\n"
        b"X-Forwarded-Host: evil\r\nX-Forwarded-Proto: https\r\nForwarded: for=6.6.6.6\r\n"
        b"Connection: keep-alive, X-Secret\r\nX-Secret: token\r\n"
        b"Proxy-Connection: X-Other\r\nX-Other: 1\r\nX-Kept: yes\r\nConnection: close\r\n\r\n"
    )
    answer = through(headers_app(), lambda url: raw(url, request)).decode()
    seen = answer.split("\r\n\r\n", 1)[1]
    assert "6.6.6.6" not in seen and "evil" not in seen and "https" not in seen
    assert "X-Forwarded-For: 127.0.0.1" in seen and "X-Forwarded-Host: a" in seen
    assert "X-Secret" not in seen and "X-Other" not in seen and "Proxy-Connection" not in seen
    assert "X-Kept: yes" in seen


def test_two_host_headers_are_refused() -> None:
    request = b"GET /b/x HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n"
    answer = through(echo_app(), lambda url: raw(url, request))
    assert answer.startswith(b"HTTP/1.1 400 Bad Request") and b"more than one Host" in answer
