"""The activator's HTTP/1.1 wire fuzzed on raw bytes, through its real listener and
upstream pool to an aiohttp echo backend: request heads with fuzzed targets, header names
and values, chunked framing with fuzzed sizes and extensions, several requests pipelined,
and plain random bytes. Every answer it writes is a status it documents, it never logs an
internal error, and after each example a well-formed request on a new connection is
still answered 200 (the process keeps serving)."""

from __future__ import annotations

import contextlib
import logging
import re
import socket
from collections.abc import Iterator

import pytest
from aiohttp import web
from hypothesis import given
from hypothesis import strategies as st

from gpuplane.activator.endpoints import Readiness
from tests.unit.activator.proxy_kit import proxy_in_front, serve
from tests.unit.fuzz.background_loop import BackgroundLoop

DOCUMENTED = {200, 400, 404, 413, 431, 501, 502, 503}
STATUS = re.compile(rb"HTTP/1\.[01] (\d{3}) ")


async def echo(request: web.Request) -> web.Response:
    return web.Response(body=await request.read() or b"ok")


@pytest.fixture(scope="module")
def proxy_port() -> Iterator[int]:
    background = BackgroundLoop()
    app = web.Application(client_max_size=0)
    app.router.add_route("*", "/{tail:.*}", echo)
    runner, port = background.run(serve(app))
    readiness = Readiness()
    readiness.ready.set()
    context = proxy_in_front(f"http://127.0.0.1:{port}", readiness)
    url = background.run(context.__aenter__())
    yield int(url.rsplit(":", 1)[1])
    background.run(context.__aexit__(None, None, None))
    background.run(runner.cleanup())
    background.close()


def exchange(port: int, payload: bytes, wait: float = 0.5) -> bytes:
    """Send ``payload``; everything answered until the proxy closes or falls silent."""
    with socket.create_connection(("127.0.0.1", port), timeout=wait) as connection:
        # Refused mid-send: what it answered is still read below.
        with contextlib.suppress(OSError):
            connection.sendall(payload)
        received = b""
        with contextlib.suppress(OSError):
            while chunk := connection.recv(65536):
                received += chunk
    return received


token = st.from_regex(rb"\A[!#$%&'*+.^_`|~0-9A-Za-z-]{1,20}\Z", fullmatch=True)
header_value = st.binary(max_size=80).filter(
    lambda value: b"\r" not in value and b"\n" not in value
)
target = st.one_of(
    st.from_regex(rb"\A/b/[ -~]{0,60}\Z", fullmatch=True).filter(lambda t: b" " not in t),
    st.binary(min_size=1, max_size=40),
)
method = st.sampled_from([b"GET", b"POST", b"PUT", b"HEAD", b"DELETE", b"OPTIONS", b"BREW"])


@st.composite
def chunked_body(draw: st.DrawFn) -> bytes:
    parts = []
    for data in draw(st.lists(st.binary(min_size=1, max_size=50), max_size=4)):
        size = draw(st.one_of(st.just(b"%x" % len(data)), st.binary(max_size=6)))
        extension = draw(st.sampled_from([b"", b";x=y", b";\x00"]))
        parts.append(size + extension + b"\r\n" + data + b"\r\n")
    return b"".join(parts) + draw(st.sampled_from([b"0\r\n\r\n", b"", b"0\r\nX: y\r\n\r\n"]))


@st.composite
def request(draw: st.DrawFn) -> bytes:
    headers = [(b"Host", b"a")]
    headers += draw(st.lists(st.tuples(token, header_value), max_size=5))
    body = b""
    framing = draw(st.sampled_from(["none", "length", "chunked", "both", "bad-length"]))
    if framing in ("length", "both"):
        body = draw(st.binary(max_size=100))
        headers.append((b"Content-Length", b"%d" % len(body)))
    if framing in ("chunked", "both"):
        headers.append((b"Transfer-Encoding", b"chunked"))
        body = draw(chunked_body())
    if framing == "bad-length":
        headers.append((b"Content-Length", draw(st.sampled_from([b"-1", b"1e3", b"", b"9" * 30]))))
    head = b"%s %s HTTP/1.1\r\n" % (draw(method), draw(target))
    head += b"".join(b"%s: %s\r\n" % pair for pair in headers)
    return head + b"\r\n" + body


def well_formed_still_served(port: int) -> None:
    answer = exchange(port, b"GET /b/alive HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n", 5)
    assert answer.startswith(b"HTTP/1.1 200 OK"), answer[:200]


class Errors(logging.Handler):
    """Every ERROR the activator logs (an internal error answering a request)."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


ERRORS = Errors()
logging.getLogger("gpuplane.activator").addHandler(ERRORS)


def statuses(answer: bytes) -> set[int]:
    return {int(code) for code in STATUS.findall(answer)}


@given(requests=st.lists(request(), min_size=1, max_size=4))
def test_pipelined_fuzzed_requests(proxy_port: int, requests: list[bytes]) -> None:
    ERRORS.records.clear()
    answer = exchange(proxy_port, b"".join(requests))
    assert statuses(answer) <= DOCUMENTED, answer[:300]
    assert not ERRORS.records, [record.getMessage() for record in ERRORS.records]
    well_formed_still_served(proxy_port)


@given(payload=st.binary(min_size=1, max_size=400))
def test_random_bytes(proxy_port: int, payload: bytes) -> None:
    ERRORS.records.clear()
    answer = exchange(proxy_port, payload)
    assert statuses(answer) <= DOCUMENTED, answer[:300]
    assert not ERRORS.records, [record.getMessage() for record in ERRORS.records]
    well_formed_still_served(proxy_port)
