"""The side facing clients: HTTP/1.1 on an asyncio protocol, parsed by httptools (llhttp).

Why not a web framework: the proxy's cost per request is its budget (bench/activator.py),
and a framework's request and response objects cost several times the proxying itself.
Here a request is its head and a body buffer, and an answer is bytes written in as few
writes as possible.

One task per connection answers its requests in order (pipelined ones wait their turn).
A connection that closes cancels that task, so a held request frees its slot at once."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from http import HTTPStatus
from typing import cast

import httptools

from gpuplane.activator.flags import BODY_IDLE_SECONDS, INPUT_BUDGET_MIB, MAX_CONNECTIONS
from gpuplane.activator.streams import Chunks, Connection, InputBudget, PeerGone, ReadGate

log = logging.getLogger(__name__)
MAX_HEAD_BYTES = 64 * 1024  # request line and headers together; past it: 431
LINGER_SECONDS = 2.0  # a refused connection's bytes are read and dropped this long
# Pipelined requests queued on one connection before its reading pauses (a client that
# sends without reading answers cannot queue without bound).
MAX_PIPELINED = 16
IDLE_SECONDS = 75.0  # a connection with no whole request head in this long is closed


@dataclass(frozen=True)
class ListenerLimits:
    """What one activator process accepts at once. The defaults fit the pod's 256 Mi: 96
    MiB of request heads and bodies buffered (the input budget), at most 4,096 connections
    (a Python connection costs about 20 KiB besides its input); a body that stalls
    ``body_idle_seconds`` closes its connection."""

    max_connections: int = MAX_CONNECTIONS
    input_budget: int = INPUT_BUDGET_MIB * 1024 * 1024
    body_idle_seconds: float = BODY_IDLE_SECONDS


@dataclass
class Request:
    method: str
    target: bytes  # as the client sent it: path and query, still percent-encoded
    headers: list[tuple[bytes, bytes]]
    host: str
    remote: str
    http_version: str
    keep_alive: bool
    body: Chunks | None  # None: the request has no body
    length: int | None  # Content-Length; None for a chunked body
    expect_continue: bool
    head_bytes: int = 0  # of the process's input budget, held until it is answered

    @property
    def path(self) -> str:
        return self.target.split(b"?", 1)[0].decode("latin-1")

    @property
    def query(self) -> bytes:
        _, _, query = self.target.partition(b"?")
        return query


@functools.cache
def reason(status: int) -> bytes:
    with contextlib.suppress(ValueError):
        return HTTPStatus(status).phrase.encode()
    return b"Unknown"


def head_bytes(status: int, headers: list[tuple[bytes, bytes]]) -> bytes:
    lines = [b"HTTP/1.1 %d %s\r\n" % (status, reason(status))]
    lines += [b"%s: %s\r\n" % pair for pair in headers]
    lines.append(b"\r\n")
    return b"".join(lines)


class Reply:
    """The answer to one request, written as it goes: a whole answer in one write, or a head
    and then the body chunk by chunk (chunked framing when its length is unknown)."""

    def __init__(self, connection: ClientConnection, request: Request) -> None:
        self._connection, self._request = connection, request
        self._chunked = self._continued = False
        self.status = 0  # 0 until the head is written
        self.finished = False

    def whole(self, status: int, headers: list[tuple[bytes, bytes]], body: bytes) -> None:
        headers = [*headers, (b"Content-Length", b"%d" % len(body)), *self._close_header()]
        self.status = status
        payload = b"" if self._request.method == "HEAD" else body
        self._connection.write(head_bytes(status, headers) + payload)
        self.finished = True

    def start(self, status: int, headers: list[tuple[bytes, bytes]], length: int | None) -> None:
        bodiless = self._request.method == "HEAD" or status in (204, 304)
        if length is not None:
            framing = [(b"Content-Length", b"%d" % length)]
        elif bodiless:
            framing = []
        elif self._request.http_version == "1.1":
            framing, self._chunked = [(b"Transfer-Encoding", b"chunked")], True
        else:  # an HTTP/1.0 client: the end of the body is the end of the connection
            framing, self._connection.keep_alive = [], False
        self.status = status
        self._connection.write(head_bytes(status, [*headers, *framing, *self._close_header()]))

    def send_continue(self) -> None:
        """The client waits for this before sending its body (``Expect: 100-continue``):
        sent when the request is forwarded, so a held request's body waits with it."""
        if self._request.expect_continue and not self._continued:
            self._continued = True
            self._connection.write(b"HTTP/1.1 100 Continue\r\n\r\n")

    def write(self, data: bytes) -> None:
        if data:
            self._connection.write(b"%x\r\n%s\r\n" % (len(data), data) if self._chunked else data)

    def end(self) -> None:
        if self._chunked:
            self._connection.write(b"0\r\n\r\n")
        self.finished = True

    async def drain(self) -> None:
        await self._connection.drain()

    def _close_header(self) -> list[tuple[bytes, bytes]]:
        self._connection.keep_alive = self._connection.keep_alive and self._request.keep_alive
        return [] if self._connection.keep_alive else [(b"Connection", b"close")]


Handler = Callable[[Request, Reply], Awaitable[None]]


class BadRequest(Exception):
    """A request refused while it is parsed: ``status`` and the message answer it, and the
    connection closes."""

    status = 400


class HeadTooLarge(BadRequest):
    """The request line and headers are over MAX_HEAD_BYTES."""

    status = 431

    def __init__(self) -> None:
        super().__init__(f"the request head is over {MAX_HEAD_BYTES} bytes")


class ClientConnection(Connection):
    def __init__(
        self,
        handler: Handler,
        connections: set[ClientConnection],
        limits: ListenerLimits,
        budget: InputBudget,
    ) -> None:
        super().__init__()
        self._handler, self._connections = handler, connections
        self._limits, self._budget = limits, budget
        self._stalled: asyncio.TimerHandle | None = None
        self._body_seen = 0.0  # loop time of the last body byte of the request being read
        self._gate: ReadGate | None = None  # the transport's reading, once connected
        self._parser = httptools.HttpRequestParser(self)
        self._queue: deque[Request | tuple[int, str]] = deque()
        self._arrived = asyncio.Event()
        self._worker: asyncio.Task[None] | None = None
        self._idle: asyncio.TimerHandle | None = None
        self._reading: Request | None = None  # the request whose body is arriving
        self._url = b""
        self._headers: list[tuple[bytes, bytes]] = []
        self._head_size = 0
        # Raw bytes of the head being read, counted as they arrive: llhttp only reports a
        # header once it is complete, and an unfinished one grew without bound before.
        self._in_head = True
        self._head_raw = 0
        self._peer = ""
        self._websocket = self._queue_full = False
        self._discarding = False  # refused: what still arrives is read and dropped
        self.keep_alive = True
        self.busy = False  # a request is being answered

    # asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        if len(self._connections) >= self._limits.max_connections:
            # Told and closed at once: nothing of it is read or kept.
            body = b"too many connections; retry shortly"
            framing = [(b"Content-Length", b"%d" % len(body)), (b"Connection", b"close"),
                       (b"Retry-After", b"1")]  # fmt: skip
            self.write(head_bytes(503, framing) + body)
            self.close()
            return
        peer = transport.get_extra_info("peername")
        self._peer = str(peer[0]) if peer else ""
        self._gate = ReadGate(cast(asyncio.Transport, transport))
        self._budget.join(self._gate)
        self._connections.add(self)
        self._worker = asyncio.get_running_loop().create_task(self._answer_in_turn())
        self._arm_idle()

    def data_received(self, data: bytes) -> None:
        if self._discarding:
            return
        if self._in_head:
            # Heads count in the process's input budget from their first byte: an endless
            # or a held one costs memory like a body. A read that also carries body bytes
            # counts them twice until the request is answered: over, never under.
            self._head_raw += len(data)
            self._budget.take(len(data))
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade as upgrade:
            if self._websocket:
                self._refuse(501, "WebSocket upgrades are not proxied")
                return
            # Any other upgrade (h2c) is ignored, as RFC 9110 (7.8) lets a server do: the
            # request was queued as plain HTTP/1.1, and what follows it is parsed afresh.
            self._parser = httptools.HttpRequestParser(self)
            rest = data[int(upgrade.args[0]) :]
            if rest:
                self.data_received(rest)
        except httptools.HttpParserError as error:
            # A refusal of our own callbacks arrives wrapped (httptools' callback error).
            cause = error.__context__
            if isinstance(cause, BadRequest):
                self._refuse(cause.status, str(cause))
            else:
                self._refuse(400, f"malformed request: {error}")
            return
        if self._in_head and self._head_raw > MAX_HEAD_BYTES:
            # Checked per read (asyncio reads at most 256 KiB): an unfinished header line is
            # held by llhttp where on_header never sees it.
            self._refuse(HeadTooLarge.status, str(HeadTooLarge()))

    def connection_lost(self, exc: Exception | None) -> None:
        super().connection_lost(exc)
        self._connections.discard(self)
        if self._gate is not None:
            self._budget.leave(self._gate)
        if self._reading is not None and self._reading.body is not None:
            self._reading.body.finish(ConnectionResetError("the client closed the connection"))
        # Requests that will never be answered give their bytes back (heads and bodies).
        self._budget.give_back(self._head_raw)
        self._head_raw = 0
        for item in self._queue:
            if isinstance(item, Request):
                self._budget.give_back(item.head_bytes)
                item.head_bytes = 0
                if item.body is not None:
                    item.body.discard()
        for timer in (self._idle, self._stalled):
            if timer is not None:
                timer.cancel()
        if self._worker is not None:
            self._worker.cancel()  # a held request frees its slot; a relay stops

    # httptools callbacks
    def on_message_begin(self) -> None:
        self._url, self._headers, self._head_size = b"", [], 0
        self._in_head = True

    def on_url(self, url: bytes) -> None:
        self._url += url
        self._head_size += len(url)
        if self._head_size > MAX_HEAD_BYTES:
            raise HeadTooLarge

    def on_header(self, name: bytes, value: bytes) -> None:
        self._headers.append((name, value))
        self._head_size += len(name) + len(value) + 4
        if self._head_size > MAX_HEAD_BYTES:
            raise HeadTooLarge

    def on_headers_complete(self) -> None:
        head_bytes, self._in_head, self._head_raw = self._head_raw, False, 0
        gate = self._gate
        self._websocket = self._parser.should_upgrade() and any(
            name.lower() == b"upgrade" and b"websocket" in value.lower()
            for name, value in self._headers
        )
        if gate is None or self._websocket:
            return  # feed_data raises next, and the request is refused
        if self._idle is not None:
            # Disarmed only now: a client that never finishes its head is still closed.
            self._idle.cancel()
        host, length, chunked, expect = "", None, False, False
        hosts = 0
        for name, value in self._headers:
            lowered = name.lower()
            if lowered == b"host":
                host = value.decode("latin-1")
                hosts += 1
            elif lowered == b"content-length":
                length = int(value)  # llhttp has checked it is a number
            elif lowered == b"transfer-encoding":
                chunked = chunked or b"chunked" in value.lower()
            elif lowered == b"expect":
                expect = value.lower() == b"100-continue"
        if hosts > 1:
            # Which one routes? A front proxy and we might not agree (RFC 9112, 3.2): refuse.
            raise BadRequest("more than one Host header")
        has_body = chunked or bool(length)
        request = Request(
            method=self._parser.get_method().decode("ascii"),
            target=self._url,
            headers=self._headers,
            host=host,
            remote=self._peer,
            http_version=self._parser.get_http_version(),
            keep_alive=self._parser.should_keep_alive(),
            body=Chunks(gate, self._budget) if has_body else None,
            length=None if chunked else length,
            expect_continue=expect and has_body,
            head_bytes=head_bytes,
        )
        self._reading = request if has_body else None
        if has_body:
            self._body_seen = asyncio.get_running_loop().time()
            self._arm_stalled(self._limits.body_idle_seconds)
        self._queue.append(request)
        self._arrived.set()
        if len(self._queue) >= MAX_PIPELINED and not self._queue_full:
            self._queue_full = True
            gate.pause("pipeline")

    def on_body(self, body: bytes) -> None:
        if self._reading is not None and self._reading.body is not None:
            self._reading.body.feed(body)
            # A timestamp per chunk, not a timer: the one timer reads it when it fires.
            self._body_seen = asyncio.get_running_loop().time()

    def on_message_complete(self) -> None:
        self._in_head, self._head_raw = True, 0
        if self._stalled is not None:
            self._stalled.cancel()
            self._stalled = None
        if self._reading is not None and self._reading.body is not None:
            self._reading.body.finish()
        self._reading = None

    # the connection's requests, one at a time
    async def _answer_in_turn(self) -> None:
        while True:
            while not self._queue:
                self._arrived.clear()
                await self._arrived.wait()
            item = self._queue.popleft()
            if self._queue_full and len(self._queue) <= MAX_PIPELINED // 2:
                self._queue_full = False
                if self._gate is not None:
                    self._gate.resume("pipeline")
            if isinstance(item, tuple):
                status, message = item
                body = message.encode()
                framing = [(b"Content-Length", b"%d" % len(body)), (b"Connection", b"close")]
                self.write(head_bytes(status, framing) + body)
                self._linger()
                return
            self.busy = True
            reply = Reply(self, item)
            try:
                await self._handler(item, reply)
            except Exception:
                log.exception("answering %s %r", item.method, item.target)
                if not reply.status:
                    reply.whole(500, [], b"internal error")
                self.keep_alive = False
            finally:
                self._budget.give_back(item.head_bytes)
                item.head_bytes = 0
            self.busy = False
            unread = item.body is not None and not item.body.complete
            if not (reply.finished and self.keep_alive and item.keep_alive) or unread:
                # A body that has not arrived to its end is still on the socket: the next
                # request would start in the middle of it.
                self.close()
                return
            if item.body is not None:
                item.body.discard()  # what the handler did not read (a 404's body, say)
            self._arm_idle()

    def _refuse(self, status: int, message: str) -> None:
        """A request that cannot be parsed: answered in its turn, then the connection
        closes (nothing after it on the connection can be trusted)."""
        # Reading goes on, into nothing: closing with unsent bytes of the client's still
        # unread would reset the connection and lose the answer on the way.
        self._discarding = True
        if self._reading is not None and self._reading.body is not None:
            self._reading.body.finish(ConnectionResetError(message))
        self._queue.append((status, message))
        self._arrived.set()

    def _linger(self) -> None:
        """After a refusal: our side ends (FIN after the answer), the client's bytes are
        dropped as they come, and the connection closes after LINGER_SECONDS at most."""
        transport = self.transport
        if transport is not None and transport.can_write_eof():
            transport.write_eof()
        asyncio.get_running_loop().call_later(LINGER_SECONDS, self.close)

    def _arm_stalled(self, delay: float) -> None:
        """A body that sends nothing for body_idle_seconds ends its connection (a body
        stalled at 10 of 100 bytes once kept one open for ten idle timeouts)."""
        if self._stalled is not None:
            self._stalled.cancel()
        self._stalled = asyncio.get_running_loop().call_later(delay, self._body_stalled)

    def _body_stalled(self) -> None:
        reading = self._reading
        if reading is None or reading.body is None or reading.body.complete:
            return
        idle = self._limits.body_idle_seconds
        quiet = asyncio.get_running_loop().time() - self._body_seen
        if quiet < idle:
            self._arm_stalled(idle - quiet)  # bytes came since: wait out the rest
            return
        if self._gate is not None and self._gate.paused:
            self._arm_stalled(idle)  # we stopped reading it, not the client: not a stall
            return
        log.info("closing %s: its request body stalled", self._peer)
        # The client's doing: its request ends as one whose client went away.
        reading.body.finish(PeerGone("the request body stalled"))
        self.close()

    def _arm_idle(self) -> None:
        if self._idle is not None:
            self._idle.cancel()
        self._idle = asyncio.get_running_loop().call_later(IDLE_SECONDS, self._close_if_idle)

    def _close_if_idle(self) -> None:
        if not self.busy and not self._queue:
            self.close()


class Listener:
    """The proxy's listening socket and the connections it accepted."""

    def __init__(self, handler: Handler, limits: ListenerLimits | None = None) -> None:
        self._handler = handler
        self._limits = limits or ListenerLimits()
        self.budget = InputBudget(self._limits.input_budget)
        self._connections: set[ClientConnection] = set()
        self._server: asyncio.Server | None = None

    async def start(self, host: str, port: int) -> int:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            lambda: ClientConnection(self._handler, self._connections, self._limits, self.budget),
            host,
            port,
        )
        return int(self._server.sockets[0].getsockname()[1])

    async def stop(self, grace: float) -> None:
        """No new connections; idle ones close now, busy ones when their answer is done or
        after ``grace`` seconds, whichever comes first."""
        if self._server is not None:
            self._server.close()
        deadline = asyncio.get_running_loop().time() + grace
        while self._connections and asyncio.get_running_loop().time() < deadline:
            for connection in list(self._connections):
                if not connection.busy:
                    connection.close()
            await asyncio.sleep(0.05)
        for connection in list(self._connections):
            connection.close()
