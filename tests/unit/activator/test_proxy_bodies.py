"""Requests through the proxy (its own listener and upstream pool), on loopback with real
aiohttp servers: a small body of known length arrives whole with its length; a chunked body
streams, so the backend reads its first chunk while the client still holds back the rest;
headers pass as the client sent them (none added); a cookie one client's answer sets is
never sent with another client's request."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import aiohttp
from aiohttp import web

from tests.unit.activator.proxy_kit import through_proxy


def test_a_small_body_arrives_whole_with_its_length() -> None:
    seen: dict[str, object] = {}

    async def backend(request: web.Request) -> web.Response:
        seen["length"] = request.content_length
        seen["chunked"] = request.headers.get("Transfer-Encoding")
        seen["body"] = await request.read()
        return web.Response(body=b"ok")

    async def send(url: str) -> int:
        async with (
            aiohttp.ClientSession() as client,
            client.post(f"{url}/b/x", data=b'{"input": ["a"]}') as answer,
        ):
            await answer.read()
            return answer.status

    app = web.Application()
    app.router.add_post("/x", backend)
    assert asyncio.run(through_proxy(app, send)) == 200
    assert seen == {"length": 16, "chunked": None, "body": b'{"input": ["a"]}'}


def test_a_chunked_body_streams_to_the_backend() -> None:
    events: list[str] = []

    async def scenario() -> bytes:
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

        async def send(url: str) -> bytes:
            async with (
                aiohttp.ClientSession() as client,
                client.post(f"{url}/b/x", data=body()) as answer,
            ):
                return await answer.read()

        app = web.Application()
        app.router.add_post("/x", backend)
        return await through_proxy(app, send)

    assert asyncio.run(scenario()) == b"first rest"
    assert events == ["backend read b'first '", "client sends the rest"]


def test_headers_pass_as_the_client_sent_them() -> None:
    """None of the headers an HTTP client library adds by itself: without the client's
    Accept-Encoding the backend must not be invited to compress an answer the client
    would get undecoded."""
    seen: dict[str, str | None] = {}

    async def backend(request: web.Request) -> web.Response:
        for name in ("Accept-Encoding", "Accept", "User-Agent"):
            seen[name] = request.headers.get(name)
        return web.Response(body=b"ok")

    async def send(url: str) -> int:
        bare = ("Accept-Encoding", "Accept", "User-Agent")
        async with (
            aiohttp.ClientSession(skip_auto_headers=bare) as client,
            client.get(f"{url}/b/x", headers={"User-Agent": "curl/8"}) as answer,
        ):
            return answer.status

    app = web.Application()
    app.router.add_get("/x", backend)
    assert asyncio.run(through_proxy(app, send)) == 200
    assert seen == {"Accept-Encoding": None, "Accept": None, "User-Agent": "curl/8"}


def test_a_cookie_set_for_one_client_never_reaches_another() -> None:
    cookies: list[str | None] = []

    async def login(request: web.Request) -> web.Response:
        answer = web.Response(body=b"welcome alice")
        answer.set_cookie("session", "alice")
        return answer

    async def whoami(request: web.Request) -> web.Response:
        cookies.append(request.headers.get("Cookie"))
        return web.Response(body=b"?")

    async def send(url: str) -> list[str]:
        # Each client keeps its own cookies (unsafe: the proxy is an IP address).
        alice_jar, bob_jar = aiohttp.CookieJar(unsafe=True), aiohttp.CookieJar(unsafe=True)
        async with (
            aiohttp.ClientSession(cookie_jar=alice_jar) as alice,
            aiohttp.ClientSession(cookie_jar=bob_jar) as bob,
        ):
            async with alice.get(f"{url}/b/login") as answer:
                set_cookie = answer.headers.get("Set-Cookie", "")
            async with bob.get(f"{url}/b/whoami") as answer:
                await answer.read()
            async with alice.get(f"{url}/b/whoami") as answer:
                await answer.read()
        return [set_cookie]

    app = web.Application()
    app.router.add_get("/login", login)
    app.router.add_get("/whoami", whoami)
    # A host name, not an IP: cookie jars keep cookies for names.
    (set_cookie,) = asyncio.run(through_proxy(app, send, host="localhost"))
    assert "session=alice" in set_cookie  # relayed to alice, as the backend wrote it
    # bob gets nothing of alice's; alice's own client sends her cookie back itself.
    assert cookies == [None, "session=alice"]
