"""One request forwarded on one upstream connection: its head and body go up, the answer
comes back to the client as it arrives. A small body of known length, either way, goes in
one write; a chunked or large one, and Server-Sent Events, chunk by chunk, with flow
control (a slow client slows the backend's answer, not the proxy's memory)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from gpuplane.activator.streams import Chunks
from gpuplane.activator.upstream import AnswerHead, UpstreamClosed, UpstreamConnection
from gpuplane.activator.wire import Reply, Request

log = logging.getLogger(__name__)
# Headers that belong to one connection, not to the message (RFC 9110, 7.6.1), and the
# framing headers the proxy writes itself for each side.
HOP_BY_HOP = frozenset(
    {b"connection", b"keep-alive", b"proxy-authenticate", b"proxy-authorization", b"te",
     b"trailer", b"transfer-encoding", b"upgrade", b"host", b"content-length", b"expect"}
)  # fmt: skip
# Set by the proxy from what it saw, never passed through from the client: a forged
# X-Forwarded-For placed first would be the address a backend trusts.
FORWARDED = frozenset(
    {b"x-forwarded-for", b"x-forwarded-host", b"x-forwarded-proto", b"forwarded",
     b"proxy-connection"}
)  # fmt: skip
# A body (request or answer) with a length up to this is relayed in one write.
WHOLE_BODY_BYTES = 256 * 1024


async def small_body(request: Request, reply: Reply) -> bytes | None:
    """The request's body, read whole, when it is small and of known length (it can be sent
    again on another connection); None when it is streamed or there is none."""
    if request.body is None or request.length is None or request.length > WHOLE_BODY_BYTES:
        return None
    reply.send_continue()
    return await read_to_end(request.body)


async def read_to_end(chunks: Chunks) -> bytes:
    if chunks.complete:
        return chunks.take_all()
    parts = []
    while data := await chunks.next():
        parts.append(data)
    return b"".join(parts)


def connection_listed(headers: list[tuple[bytes, bytes]]) -> frozenset[bytes]:
    """Header names the client's Connection (and Proxy-Connection) headers declare as
    hop-by-hop: they end at this proxy (RFC 9110, 7.6.1)."""
    names = set()
    for name, value in headers:
        if name.lower() in (b"connection", b"proxy-connection"):
            names |= {token.strip().lower() for token in value.split(b",") if token.strip()}
    return frozenset(names)


def request_head(request: Request, target: bytes, authority: bytes, whole: bytes | None) -> bytes:
    lines = [b"%s %s HTTP/1.1\r\nHost: %s\r\n" % (request.method.encode(), target, authority)]
    dropped = HOP_BY_HOP | FORWARDED | connection_listed(request.headers)
    lines += [b"%s: %s\r\n" % pair for pair in request.headers if pair[0].lower() not in dropped]
    lines.append(b"X-Forwarded-For: %s\r\n" % request.remote.encode())
    lines.append(b"X-Forwarded-Host: %s\r\n" % request.host.encode("latin-1"))
    lines.append(b"X-Forwarded-Proto: http\r\n")
    if whole is not None:
        lines.append(b"Content-Length: %d\r\n" % len(whole))
    elif request.length is not None:
        lines.append(b"Content-Length: %d\r\n" % request.length)
    elif request.body is not None:
        lines.append(b"Transfer-Encoding: chunked\r\n")
    lines.append(b"\r\n")
    return b"".join(lines)


async def exchange(
    request: Request,
    reply: Reply,
    upstream: UpstreamConnection,
    *,
    head: bytes,
    whole: bytes | None,
    on_answer: Callable[[AnswerHead], None],
) -> int:
    """Send, then relay the answer; its status. Raises UpstreamClosed when the backend
    closed before answering (nothing was relayed yet)."""
    answered = upstream.begin(request.method)
    upstream.write(head + (whole or b""))
    uploading = None
    if whole is None and request.body is not None:
        reply.send_continue()
        chunked = request.length is None
        uploading = asyncio.create_task(_upload(request.body, upstream, chunked))
    try:
        answer = await answered
        on_answer(answer)
        await _relay(request, reply, answer)
        return answer.status
    finally:
        if uploading is not None:
            if not uploading.done():
                # The backend answered before taking the whole body: the connection is not
                # reused, and neither is the client's (the rest of its body is unread).
                uploading.cancel()
                upstream.reusable = False
            # Not awaited (that could swallow this task's own cancellation); a failed
            # upload's error is the connection's, and the answer above already tells it.
            uploading.add_done_callback(_retrieve)


def _retrieve(task: asyncio.Task[None]) -> None:
    if not task.cancelled():
        task.exception()


async def _upload(body: Chunks, upstream: UpstreamConnection, chunked: bool) -> None:
    while data := await body.next():
        upstream.write(b"%x\r\n%s\r\n" % (len(data), data) if chunked else data)
        await upstream.drain()
    if chunked:
        upstream.write(b"0\r\n\r\n")


async def _relay(request: Request, reply: Reply, answer: AnswerHead) -> None:
    headers = [pair for pair in answer.headers if pair[0].lower() not in HOP_BY_HOP]
    bodiless = request.method == "HEAD" or answer.status in (204, 304)
    if not bodiless and answer.length is not None and answer.length <= WHOLE_BODY_BYTES:
        reply.whole(answer.status, headers, await read_to_end(answer.body))
        return
    reply.start(answer.status, headers, answer.length)
    try:
        while data := await answer.body.next():
            reply.write(data)
            await reply.drain()
    except UpstreamClosed as error:
        # The head is out: the client learns of the cut answer by its connection closing.
        log.warning("%s %r: answer cut short: %s", request.method, request.target, error)
        return
    reply.end()
