"""The host's loopback services, as pods on a kubelet node reach them: a TCP relay on the
pod bridge's gateway address.

The API server and Prometheus listen on 127.0.0.1 only, and a pod has its own network
namespace: it cannot reach them, and there is no kube-proxy to program the ``kubernetes``
Service. The operator delivered by Argo CD runs in such a pod, so each service it needs
gets a port on the bridge's gateway (the host side of the pod network, reachable from the
host and its pods only), relayed byte for byte to the loopback listener: TLS stays end to
end, between the pod and the API server. Connections from outside the pod subnet are
closed unanswered.

Limits: it parses nothing (bytes pass through unread), so a hostile head or body is the
target's to refuse. Memory per connection is bounded by asyncio's flow control (each
direction reads 64 KiB at a time and waits for the other side to drain), and the number of
connections by ``--max-connections``: one over it is closed at once, so slow or idle
clients cannot exhaust the process's descriptors. No idle timeout: a watch stream is
legitimately quiet for minutes.

Not socat: the relay must bind the gateway address before the bridge exists (the CNI
plugin creates it with the first pod), which IP_FREEBIND allows, and one process serves
every port.

Run as ``python -m gpuplane.backends.local.pod_gateway --subnet CIDR LISTEN=TARGET...``
where LISTEN and TARGET are ``host:port``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ipaddress
import logging
import socket
from dataclasses import dataclass

from gpuplane.shared.stop_signals import stop_event

# <linux/in.h>; Python's socket module names it only on some builds.
IP_FREEBIND = getattr(socket, "IP_FREEBIND", 15)
CHUNK = 64 * 1024
# One operator's watches and calls need a handful; the cap keeps descriptors bounded.
MAX_CONNECTIONS = 256
log = logging.getLogger("gpuplane.pod_gateway")


@dataclass(frozen=True)
class Route:
    listen: tuple[str, int]
    target: tuple[str, int]


def host_port(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    if not host or not port.isdigit():
        raise ValueError(f"{text!r}: expected host:port")
    return host, int(port)


def parse_route(text: str) -> Route:
    listen, separator, target = text.partition("=")
    if not separator:
        raise argparse.ArgumentTypeError(f"{text!r}: expected LISTEN=TARGET (host:port each)")
    try:
        return Route(host_port(listen), host_port(target))
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def is_allowed(peer: str, subnet: ipaddress.IPv4Network) -> bool:
    """A pod of the node (its subnet) or the host itself."""
    address = ipaddress.ip_address(peer)
    return address in subnet or address.is_loopback


async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Copy until end of stream, then half-close: TLS close-notify and a client's last
    request both get through."""
    try:
        while data := await reader.read(CHUNK):
            writer.write(data)
            await writer.drain()
        if writer.can_write_eof():
            writer.write_eof()
    except (ConnectionError, OSError):
        pass


@dataclass
class Admission:
    """Who may use the gateway and how many connections it holds at once (every route)."""

    subnet: ipaddress.IPv4Network
    max_connections: int = MAX_CONNECTIONS
    open: int = 0


async def relay(
    route: Route,
    admission: Admission,
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
) -> None:
    peer = writer.get_extra_info("peername")[0]
    admitted = False
    try:
        if not is_allowed(peer, admission.subnet):
            log.warning(
                "refused %s on %s:%d: not a pod of %s", peer, *route.listen, admission.subnet
            )
            return
        if admission.open >= admission.max_connections:
            log.warning("refused %s: %d connections open already", peer, admission.open)
            return
        admission.open += 1
        admitted = True
        try:
            upstream_reader, upstream_writer = await asyncio.open_connection(*route.target)
        except OSError as error:
            log.warning("%s:%d unreachable for %s: %s", *route.target, peer, error)
            return
        try:
            await asyncio.gather(pipe(reader, upstream_writer), pipe(upstream_reader, writer))
        finally:
            upstream_writer.close()
    finally:
        admission.open -= admitted
        writer.close()
        with contextlib.suppress(ConnectionError, OSError):
            await writer.wait_closed()


def listening_socket(address: tuple[str, int]) -> socket.socket:
    """Bound even while the address does not exist yet (IP_FREEBIND)."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.setsockopt(socket.IPPROTO_IP, IP_FREEBIND, 1)
    listener.bind(address)
    listener.setblocking(False)
    return listener


async def serve(routes: list[Route], admission: Admission) -> None:
    servers = []
    for route in routes:

        async def handle(
            reader: asyncio.StreamReader, writer: asyncio.StreamWriter, route: Route = route
        ) -> None:
            await relay(route, admission, reader, writer)

        servers.append(await asyncio.start_server(handle, sock=listening_socket(route.listen)))
        log.info("relaying %s:%d to %s:%d", *route.listen, *route.target)
    try:
        await stop_event().wait()
    finally:
        for server in servers:
            server.close()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="gpuplane.backends.local.pod_gateway")
    parser.add_argument("--subnet", type=ipaddress.IPv4Network, required=True)
    parser.add_argument("--max-connections", type=int, default=MAX_CONNECTIONS)
    parser.add_argument("routes", nargs="+", type=parse_route, metavar="LISTEN=TARGET")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    asyncio.run(serve(args.routes, Admission(args.subnet, args.max_connections)))


if __name__ == "__main__":
    main()
