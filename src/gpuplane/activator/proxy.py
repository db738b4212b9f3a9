"""The request path: route, hold while the backend has no ready endpoint (asking for a
wake at once and again every few seconds while requests wait), forward with bodies
streamed both ways, answer 503 with ``Retry-After`` when a limit is reached."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any

import aiohttp
from aiohttp import web

from gpuplane.activator.config import Backend, Routes
from gpuplane.activator.endpoints import Readiness
from gpuplane.activator.metrics import ActivatorMetrics

log = logging.getLogger(__name__)
# Headers that belong to one connection, not to the request (RFC 9110, 7.6.1).
HOP_BY_HOP = frozenset(
    {"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te",
     "trailer", "transfer-encoding", "upgrade", "host"}
)  # fmt: skip
WAKE_REPEAT_SECONDS = 5.0  # a lost or refused wake request is asked again while holding
CONNECT_RETRY_SECONDS = 0.1  # a just-ready endpoint may not accept for a moment
# How long a refused connection to an endpoint still listed as ready is retried: a pod
# that stopped listening is removed from its EndpointSlice within moments (then the
# request is held); an endpoint that keeps refusing is an error, answered 503.
REFUSED_GRACE_SECONDS = 5.0
CLIENT_GONE = 499  # nginx's code for a client that closed before the answer
# A body (request or answer) with a length up to this is relayed in one write; longer
# ones, chunked ones and event streams are relayed chunk by chunk as they arrive.
WHOLE_BODY_BYTES = 256 * 1024


def upstream_session() -> aiohttp.ClientSession:
    """The client side of the proxy. Requests pass as the client sent them and answers as
    the backend wrote them: no decompression; no cookie jar, or a Set-Cookie for one
    client would be kept and sent with every other client's requests; and none of the
    headers aiohttp adds by itself (an ``Accept-Encoding`` the client never sent would let
    the backend compress an answer the client cannot read)."""
    return aiohttp.ClientSession(
        timeout=aiohttp.ClientTimeout(total=None, sock_connect=5.0),
        auto_decompress=False,
        cookie_jar=aiohttp.DummyCookieJar(),
        skip_auto_headers=("User-Agent", "Accept", "Accept-Encoding"),
    )


@dataclass
class BackendState:
    backend: Backend
    readiness: Readiness
    held: int = 0
    last_wake: float = float("-inf")


class Unavailable(Exception):
    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


Waker = Callable[[Backend], Coroutine[Any, Any, bool]]


class Proxy:
    def __init__(
        self,
        routes: Routes,
        states: dict[str, BackendState],
        session: aiohttp.ClientSession,
        *,
        wake: Waker,
        metrics: ActivatorMetrics,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.routes, self.states, self.session = routes, states, session
        self.wake, self.metrics, self.clock = wake, metrics, clock
        self._wakes: set[asyncio.Task[bool]] = set()

    async def handle(self, request: web.Request) -> web.StreamResponse:
        backend = self.routes.route(request.host, request.path)
        if backend is None:
            self.metrics.requests.labels("", "", "404").inc()
            return web.json_response({"error": f"no backend routes {request.path}"}, status=404)
        owner = (backend.namespace, backend.deployment)
        code = CLIENT_GONE
        try:
            response = await self._serve(request, self.states[backend.name])
        except Unavailable as error:
            self.metrics.lost.labels(*owner, error.reason).inc()
            code = 503
            return web.json_response(
                {"error": str(error)}, status=503, headers={"Retry-After": "5"}
            )
        else:
            code = response.status
            return response
        finally:
            self.metrics.requests.labels(*owner, str(code)).inc()

    async def _serve(self, request: web.Request, state: BackendState) -> web.StreamResponse:
        backend, started = state.backend, self.clock()
        deadline = started + backend.max_hold_seconds
        held = False
        while True:
            if not state.readiness.ready.is_set():
                held = True
                await self._hold(state, deadline)
            retry_until = deadline if held else min(deadline, started + REFUSED_GRACE_SECONDS)
            upstream = await self._connect(request, state, retry_until)
            if upstream is not None:
                break
            # None: the endpoint refused the connection and is no longer listed as ready,
            # it is going away (a scale to zero racing this request). Nothing was sent, so
            # the next turn holds the request like any other that arrives at zero.
        if held:
            self.metrics.hold_seconds.labels(backend.namespace, backend.deployment).observe(
                self.clock() - started
            )
        async with upstream:
            return await self._relay(request, upstream)

    async def _hold(self, state: BackendState, deadline: float) -> None:
        backend = state.backend
        if state.held >= backend.max_held:
            raise Unavailable("rejected", f"{backend.name}: {state.held} requests already held")
        gauge = self.metrics.held.labels(backend.namespace, backend.deployment)
        state.held += 1
        gauge.inc()
        try:
            while not state.readiness.ready.is_set():
                self._ask_wake(state)
                left = deadline - self.clock()
                if left <= 0:
                    raise Unavailable(
                        "timeout",
                        f"{backend.name}: no ready endpoint after {backend.max_hold_seconds:.0f}s",
                    )
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(
                        state.readiness.ready.wait(), min(left, WAKE_REPEAT_SECONDS)
                    )
        finally:
            state.held -= 1
            gauge.dec()

    def _ask_wake(self, state: BackendState) -> None:
        """At most one wake request in flight per backend and per WAKE_REPEAT_SECONDS."""
        now = self.clock()
        if now - state.last_wake < WAKE_REPEAT_SECONDS:
            return
        state.last_wake = now
        task = asyncio.create_task(self.wake(state.backend))
        self._wakes.add(task)
        task.add_done_callback(self._wakes.discard)

    async def _connect(
        self, request: web.Request, state: BackendState, retry_until: float
    ) -> aiohttp.ClientResponse | None:
        """Send the request upstream; a connection refused right after the endpoint turned
        ready is retried until ``retry_until`` (nothing of the body was read yet). ``None``
        when the connection was refused and the backend has no ready endpoint any more:
        the caller holds the request."""
        backend = state.backend
        headers = [(k, v) for k, v in request.headers.items() if k.lower() not in HOP_BY_HOP]
        headers += [
            ("X-Forwarded-For", request.remote or ""),
            ("X-Forwarded-Host", request.host),
            ("X-Forwarded-Proto", request.scheme),
        ]
        # A small body of known length is read whole and sent as bytes: streaming it costs
        # more than the request itself. Chunked and large bodies stream as they arrive.
        data: bytes | aiohttp.StreamReader | None = None
        if request.body_exists:
            length = request.content_length
            small = length is not None and length <= WHOLE_BODY_BYTES
            data = await request.read() if small else request.content
        while True:
            url = self._base(state) + backend.upstream_path(request.path)
            try:
                return await self.session.request(
                    request.method,
                    url,
                    params=request.query,
                    headers=headers,
                    data=data,
                    allow_redirects=False,
                )
            except aiohttp.ClientConnectorError as error:
                if not state.readiness.ready.is_set():
                    return None
                if self.clock() >= retry_until:
                    raise Unavailable("upstream_error", f"{backend.name}: {error}") from error
                await asyncio.sleep(CONNECT_RETRY_SECONDS)

    @staticmethod
    def _base(state: BackendState) -> str:
        port = state.backend.endpoint_port
        if port is None:
            return state.backend.upstream
        address = state.readiness.next_address()
        if address is None:
            raise Unavailable("upstream_error", f"{state.backend.name}: no ready endpoint")
        host = f"[{address}]" if ":" in address else address
        return f"http://{host}:{port}"

    async def _relay(
        self, request: web.Request, upstream: aiohttp.ClientResponse
    ) -> web.StreamResponse:
        """The answer as it comes: chunked bodies and Server-Sent Events pass through
        chunk by chunk, never buffered whole; a small answer of known length goes in one
        write (the common case, and a third of the proxy's cost per request)."""
        headers = [(k, v) for k, v in upstream.headers.items() if k.lower() not in HOP_BY_HOP]
        length = upstream.content_length
        if length is not None and length <= WHOLE_BODY_BYTES:
            whole = web.Response(
                status=upstream.status, reason=upstream.reason, body=await upstream.read()
            )
            for key, value in headers:
                if key.lower() != "content-length":
                    whole.headers.add(key, value)
            return whole
        response = web.StreamResponse(status=upstream.status, reason=upstream.reason)
        for key, value in headers:
            response.headers.add(key, value)
        await response.prepare(request)
        async for chunk in upstream.content.iter_any():
            await response.write(chunk)
        await response.write_eof()
        return response
