"""The side facing backends: HTTP/1.1 connections, kept alive in a pool per address, each
answer parsed by httptools (llhttp) as it arrives. No cookie jar and no headers of its own:
a request goes as the proxy wrote it (``forward.py``)."""

from __future__ import annotations

import asyncio
import ssl
from dataclasses import dataclass

import httptools

from gpuplane.activator.streams import Chunks, Connection, ReadGate

# An idle pooled connection is closed after this. Shorter than the keep-alive of common
# servers (aiohttp 75 s, Go 90 s), so the pool seldom sends on one the server just closed.
IDLE_SECONDS = 15.0
CONNECT_SECONDS = 5.0

Address = tuple[str, int, bool]  # host, port, TLS


def authority(address: Address) -> bytes:
    """``host:port`` as a Host header carries it (an IPv6 host in brackets)."""
    host, port, _ = address
    return (f"[{host}]:{port}" if ":" in host else f"{host}:{port}").encode("latin-1")


class UpstreamClosed(ConnectionError):
    def __init__(self, message: str, answered_nothing: bool) -> None:
        super().__init__(message)
        # Not one byte of an answer came: the backend may never have seen the request.
        self.answered_nothing = answered_nothing


@dataclass
class AnswerHead:
    status: int
    headers: list[tuple[bytes, bytes]]
    length: int | None  # Content-Length; None when chunked or ended by closing
    body: Chunks


class UpstreamConnection(Connection):
    def __init__(self, pool: UpstreamPool, address: Address) -> None:
        super().__init__()
        self._pool, self.address = pool, address
        self._parser = httptools.HttpResponseParser(self)
        self.head: asyncio.Future[AnswerHead] | None = None
        self.body: Chunks | None = None
        self._headers: list[tuple[bytes, bytes]] = []
        self._no_body = self._interim = self._until_close = False
        self.received = False  # some byte of the current answer arrived
        self.reusable = True
        self.idle_timer: asyncio.TimerHandle | None = None

    def begin(self, method: str) -> asyncio.Future[AnswerHead]:
        """Expect the answer to a request about to be written: its head, when it comes."""
        self.head = asyncio.get_running_loop().create_future()
        self.body, self.received = None, False
        self._no_body = method == "HEAD"
        return self.head

    def close(self) -> None:
        self.reusable = False
        super().close()

    @property
    def answered(self) -> bool:
        """The whole answer arrived and the connection can carry another request."""
        return self.body is not None and self.body.complete and self.reusable

    # asyncio.Protocol
    def data_received(self, data: bytes) -> None:
        self.received = True
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserError as error:
            self._fail(UpstreamClosed(f"malformed answer: {error}", answered_nothing=False))
            self.close()

    def connection_lost(self, exc: Exception | None) -> None:
        super().connection_lost(exc)
        self.reusable = False
        self._pool.forget(self)
        if self.body is not None and self._until_close:
            self.body.finish()  # an answer without length or chunks ends with the connection
        else:
            what = "closed the connection" if exc is None else f"failed: {exc}"
            self._fail(UpstreamClosed(f"the backend {what}", answered_nothing=not self.received))

    # httptools callbacks
    def on_message_begin(self) -> None:
        self._headers = []

    def on_header(self, name: bytes, value: bytes) -> None:
        self._headers.append((name, value))

    def on_headers_complete(self) -> None:
        if self.transport is None or self.head is None:
            return  # an answer nobody asked for: the connection is closed below
        status = self._parser.get_status_code()
        self._interim = status < 200
        if self._interim:  # 103 Early Hints and the like: the final answer follows
            return
        length, chunked = None, False
        for name, value in self._headers:
            lowered = name.lower()
            if lowered == b"content-length":
                length = int(value)
            elif lowered == b"transfer-encoding":
                chunked = chunked or b"chunked" in value.lower()
        self.body = body = Chunks(ReadGate(self.transport))
        self.reusable = self._parser.should_keep_alive()
        bodiless = status in (204, 304)
        self._until_close = length is None and not chunked and not bodiless and not self._no_body
        if self._until_close:
            self.reusable = False
        if self._no_body or bodiless:
            self.body.finish()
            # llhttp still expects the Content-Length a HEAD answer announces: a new
            # message on this connection would be misread, so it is not reused.
            self.reusable = self.reusable and not self._no_body
        if not self.head.done():
            self.head.set_result(
                AnswerHead(status, self._headers, None if chunked else length, body)
            )

    def on_body(self, body: bytes) -> None:
        if self.body is not None:
            self.body.feed(body)

    def on_message_complete(self) -> None:
        if self._interim:
            self._interim = False
        elif self.body is not None:
            self.body.finish()

    def _fail(self, error: UpstreamClosed) -> None:
        if self.head is not None and not self.head.done():
            self.head.set_exception(error)
        elif self.body is not None and not self.body.complete:
            self.body.finish(error)


class UpstreamPool:
    """Connections kept alive per address: the newest idle one is reused first."""

    def __init__(self) -> None:
        self._idle: dict[Address, list[UpstreamConnection]] = {}
        self._tls: ssl.SSLContext | None = None

    async def connection(
        self, address: Address, *, fresh: bool = False
    ) -> tuple[UpstreamConnection, bool]:
        """A connection to ``address`` and whether it was reused. Raises OSError (refused,
        unreachable) or TimeoutError (after CONNECT_SECONDS)."""
        idle = self._idle.get(address)
        while idle and not fresh:
            connection = idle.pop()
            if connection.idle_timer is not None:
                connection.idle_timer.cancel()
            if not connection.closed:
                return connection, True
        host, port, tls = address
        if tls and self._tls is None:
            self._tls = ssl.create_default_context()
        loop = asyncio.get_running_loop()
        async with asyncio.timeout(CONNECT_SECONDS):
            _, connection = await loop.create_connection(
                lambda: UpstreamConnection(self, address), host, port,
                ssl=self._tls if tls else None, server_hostname=host if tls else None,
            )  # fmt: skip
        return connection, False

    def release(self, connection: UpstreamConnection) -> None:
        """Back to the pool when its answer is complete, else closed."""
        if not connection.answered or connection.closed:
            connection.close()
            return
        self._idle.setdefault(connection.address, []).append(connection)
        connection.idle_timer = asyncio.get_running_loop().call_later(
            IDLE_SECONDS, connection.close
        )

    def forget(self, connection: UpstreamConnection) -> None:
        idle = self._idle.get(connection.address)
        if idle and connection in idle:
            idle.remove(connection)
        if connection.idle_timer is not None:
            connection.idle_timer.cancel()

    def close(self) -> None:
        for idle in self._idle.values():
            for connection in list(idle):
                connection.close()
        self._idle.clear()
