"""The activator's own readiness probe of starting endpoints, while requests are held.

Kubernetes lists a woken pod as ready only after the kubelet's readiness probe has passed
(once a second at most) and the news has gone through the API server and the EndpointSlice
controller: up to a second after the service could answer, on a wake where the whole start
takes two or three. So while requests wait on a backend with no ready endpoint, the
activator probes each starting endpoint's readiness path itself, every
``PROBE_INTERVAL_SECONDS``, and forwards to the first that answers 200, as Knative's
activator does for a revision woken from zero. Only where requests go to the endpoints' own
addresses (``endpoints:PORT``): through a Service, kube-proxy sends to ready endpoints only.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable

from gpuplane.activator.endpoints import Readiness
from gpuplane.activator.upstream import authority

PROBE_INTERVAL_SECONDS = 0.05
PROBE_TIMEOUT_SECONDS = 0.5
# Only the status line is read; a longer one is not an HTTP answer.
STATUS_LINE_LIMIT = 1024


def is_ok_status_line(line: bytes) -> bool:
    """``HTTP/1.x 200 ...``: the probe's only success."""
    parts = line.split(maxsplit=2)
    return len(parts) >= 2 and parts[0] in {b"HTTP/1.0", b"HTTP/1.1"} and parts[1] == b"200"


async def answers_ready(
    host: str, port: int, path: str, timeout: float = PROBE_TIMEOUT_SECONDS
) -> bool:
    """One GET of ``path`` on ``host:port``: True when it answers 200 within ``timeout``;
    refused, slow, reset or anything else is False (a starting pod is all of these)."""

    async def ask() -> bool:
        reader, writer = await asyncio.open_connection(host, port, limit=STATUS_LINE_LIMIT)
        try:
            host_port = authority((host, port, False))
            writer.write(b"GET %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n"
                         % (path.encode("latin-1"), host_port))  # fmt: skip
            return is_ok_status_line(await reader.readline())
        finally:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()

    try:
        return await asyncio.wait_for(ask(), timeout)
    except (OSError, TimeoutError, ValueError):  # ValueError: a status line over the limit
        return False


async def probe_while_held(
    readiness: Readiness,
    holding: Callable[[], bool],
    port: int,
    path: str,
    *,
    on_found: Callable[[str], None] = lambda address: None,
    interval: float = PROBE_INTERVAL_SECONDS,
) -> None:
    """Probe ``readiness``'s pending endpoints while ``holding()`` and none is ready; each
    that answers is marked ready (``on_found`` told)."""
    while holding() and not readiness.ready.is_set():
        pending = readiness.pending()
        if pending:
            answers = await asyncio.gather(*(answers_ready(a, port, path) for a in pending))
            for address, ready in zip(pending, answers, strict=True):
                if ready:
                    readiness.mark_probed(address)
                    on_found(address)
        await asyncio.sleep(interval)
