"""The request path: route, hold while the backend has no ready endpoint (asking for a
wake at once and again every few seconds while requests wait), forward with bodies
streamed both ways, answer 503 with ``Retry-After`` when a limit is reached."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any

from gpuplane.activator.config import Backend, EndpointsUpstream, FixedUpstream, Routes
from gpuplane.activator.early_ready import probe_while_held
from gpuplane.activator.endpoints import Readiness
from gpuplane.activator.forward import exchange, request_head, small_body
from gpuplane.activator.metrics import ActivatorMetrics
from gpuplane.activator.streams import PeerGone
from gpuplane.activator.upstream import (
    Address,
    AnswerHead,
    UpstreamClosed,
    UpstreamConnection,
    UpstreamPool,
    authority,
)
from gpuplane.activator.wire import Reply, Request
from gpuplane.shared.wake_annotation import WAKE_REPEAT_SECONDS  # asked again while holding

log = logging.getLogger(__name__)
CONNECT_RETRY_SECONDS = 0.1  # a just-ready endpoint may not accept for a moment
# How long a refused connection to an endpoint still listed as ready is retried: a pod
# that stopped listening is removed from its EndpointSlice within moments (then the
# request is held); an endpoint that keeps refusing is an error, answered 503.
REFUSED_GRACE_SECONDS = 5.0
CLIENT_GONE = 499  # nginx's code for a client that closed before the answer
# Sent again on a fresh connection when a kept-alive one closed before any answer (the
# backend closed it as idle while the request was on its way): only methods that may be
# repeated (RFC 9110, 9.2.2), as Go's and most proxies' clients do.
IDEMPOTENT = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE", "TRACE"})


@dataclass
class BackendState:
    backend: Backend
    readiness: Readiness
    held: int = 0
    last_wake: float = float("-inf")
    prober: asyncio.Task[None] | None = None


class Unavailable(Exception):
    """A request the proxy answers itself: 503 with ``Retry-After`` (nothing reached a
    backend, try again later) or 502 (the backend failed it)."""

    def __init__(self, reason: str, message: str, status: int = 503) -> None:
        super().__init__(message)
        self.reason, self.status = reason, status


Waker = Callable[[Backend], Coroutine[Any, Any, bool]]


async def first_of(events: tuple[asyncio.Event, ...], timeout: float) -> None:
    """Until one of ``events`` is set, or ``timeout`` seconds."""
    waits = [asyncio.ensure_future(event.wait()) for event in events]
    try:
        await asyncio.wait(waits, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for wait in waits:
            wait.cancel()


def answer_json(reply: Reply, status: int, document: dict[str, str], retry: bool) -> None:
    headers = [(b"Content-Type", b"application/json")]
    if retry:
        headers.append((b"Retry-After", b"5"))
    reply.whole(status, headers, json.dumps(document).encode())


class Proxy:
    def __init__(
        self,
        routes: Routes,
        states: dict[str, BackendState],
        pool: UpstreamPool,
        *,
        wake: Waker,
        metrics: ActivatorMetrics,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.routes, self.states, self.pool = routes, states, pool
        self.wake, self.metrics, self.clock = wake, metrics, clock
        self._wakes: set[asyncio.Task[bool]] = set()
        # Set on SIGTERM: held requests are answered 503 + Retry-After at once (a client
        # retries elsewhere), instead of being cut without an answer after the grace.
        self.stopping = asyncio.Event()

    def stop_holding(self) -> None:
        self.stopping.set()

    async def handle(self, request: Request, reply: Reply) -> None:
        path = request.path
        backend = self.routes.route(request.host, path)
        if backend is None:
            self.metrics.requests.labels("", "", "404").inc()
            answer_json(reply, 404, {"error": f"no backend routes {path}"}, retry=False)
            return
        owner = (backend.namespace, backend.deployment)
        code = CLIENT_GONE
        try:
            code = await self._serve(request, reply, self.states[backend.name], path)
        except Unavailable as error:
            self.metrics.lost.labels(*owner, error.reason).inc()
            code = error.status
            answer_json(reply, code, {"error": str(error)}, retry=code == 503)
        except PeerGone:
            code = CLIENT_GONE
        finally:
            self.metrics.requests.labels(*owner, str(code)).inc()

    async def _serve(self, request: Request, reply: Reply, state: BackendState, path: str) -> int:
        backend, started = state.backend, self.clock()
        deadline = started + backend.max_hold_seconds
        held = False
        target = backend.upstream_path(path).encode("latin-1")
        if request.query:
            target += b"?" + request.query
        whole = None
        while True:
            if not state.readiness.ready.is_set():
                held = True
                await self._hold(state, deadline)
            if whole is None:
                # Read once the request is to be sent: a held request's client is told to
                # go on (100-continue) only when there is a backend to take the body.
                whole = await small_body(request, reply)
            retry_until = deadline if held else min(deadline, started + REFUSED_GRACE_SECONDS)
            opened = await self._connect(state, retry_until)
            if opened is not None:
                break
            # None: the endpoint refused the connection and is no longer listed as ready,
            # it is going away (a scale to zero racing this request). Nothing was sent, so
            # the next turn holds the request like any other that arrives at zero.

        def first_answer(answer: AnswerHead) -> None:
            if held:
                self.metrics.hold_seconds.labels(backend.namespace, backend.deployment).observe(
                    self.clock() - started
                )

        connection, reused = opened
        head = request_head(request, target, authority(connection.address), whole)
        while True:
            try:
                return await exchange(
                    request, reply, connection, head=head, whole=whole, on_answer=first_answer
                )
            except UpstreamClosed as error:
                # A kept-alive connection the backend closed before answering: once more
                # on a new one, when the request may be repeated and can be sent again.
                again = reused and error.answered_nothing and request.method in IDEMPOTENT
                if not (again and (request.body is None or whole is not None)):
                    raise Unavailable(
                        "upstream_error", f"{backend.name}: {error}", status=502
                    ) from error
            finally:
                self.pool.release(connection)
            connection, reused = await self._fresh(state, connection.address)

    async def _hold(self, state: BackendState, deadline: float) -> None:
        backend = state.backend
        if state.held >= backend.max_held:
            raise Unavailable("rejected", f"{backend.name}: {state.held} requests already held")
        gauge = self.metrics.held.labels(backend.namespace, backend.deployment)
        state.held += 1
        gauge.inc()
        try:
            while not state.readiness.ready.is_set():
                if self.stopping.is_set():
                    raise Unavailable("shutdown", f"{backend.name}: the activator is stopping")
                self._ask_wake(state)
                self._probe_starting(state)
                left = deadline - self.clock()
                if left <= 0:
                    raise Unavailable(
                        "timeout",
                        f"{backend.name}: no ready endpoint after {backend.max_hold_seconds:.0f}s",
                    )
                await first_of(
                    (state.readiness.ready, self.stopping), min(left, WAKE_REPEAT_SECONDS)
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

    def _probe_starting(self, state: BackendState) -> None:
        """One prober per backend while it holds requests, where the routes ask for it."""
        backend = state.backend
        upstream = backend.upstream
        if not backend.probe_path or not isinstance(upstream, EndpointsUpstream):
            return
        if state.prober is not None and not state.prober.done():
            return
        found = self.metrics.probed_ready.labels(backend.namespace, backend.deployment)
        state.prober = asyncio.create_task(
            probe_while_held(
                state.readiness, lambda: state.held > 0, upstream.port, backend.probe_path,
                on_found=lambda address: found.inc(),
            )
        )  # fmt: skip

    async def _connect(
        self, state: BackendState, retry_until: float
    ) -> tuple[UpstreamConnection, bool] | None:
        """A connection to a ready endpoint, and whether it was reused. A connection refused
        right after the endpoint turned ready is retried until ``retry_until``. ``None``
        when it was refused and the backend has no ready endpoint any more: the caller
        holds the request."""
        while True:
            address = self._address(state)
            try:
                return await self.pool.connection(address)
            except ConnectionRefusedError as error:
                if not state.readiness.ready.is_set():
                    return None
                if self.clock() >= retry_until:
                    raise self._unreachable(state, address, error) from error
                await asyncio.sleep(CONNECT_RETRY_SECONDS)
            except OSError as error:  # unreachable, reset, timed out: not worth a retry
                raise self._unreachable(state, address, error) from error

    async def _fresh(
        self, state: BackendState, address: Address
    ) -> tuple[UpstreamConnection, bool]:
        try:
            return await self.pool.connection(address, fresh=True)
        except OSError as error:
            raise self._unreachable(state, address, error) from error

    @staticmethod
    def _unreachable(state: BackendState, address: Address, error: OSError) -> Unavailable:
        host, port, _ = address
        reason = error.strerror or str(error) or type(error).__name__
        return Unavailable(
            "upstream_error", f"{state.backend.name}: cannot connect to {host}:{port}: {reason}"
        )

    @staticmethod
    def _address(state: BackendState) -> Address:
        upstream = state.backend.upstream
        if isinstance(upstream, FixedUpstream):
            return upstream.host, upstream.port, upstream.tls
        address = state.readiness.next_address()
        if address is None:
            raise Unavailable("upstream_error", f"{state.backend.name}: no ready endpoint")
        return address, upstream.port, False
