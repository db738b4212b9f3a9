"""What the pod gateway (gpuplane.backends.local.pod_gateway) costs a pod's connection to a
loopback service, against the same connection made directly (JSON).

- round trip: one connection, ``--requests`` sequential request/answer exchanges of 200
  bytes each (the shape of a kube API call or a Prometheus query on a kept-alive
  connection): p50/p99 microseconds direct and through the relay, and the difference;
- bulk: ``--megabytes`` streamed one way and acknowledged at the end (a list or watch of
  many objects): MB/s direct and through the relay;
- connect: ``--connects`` new connections, each with one exchange (what a client without
  keep-alive pays).
The relay runs as the backend runs it (its own process, the same arguments, loopback
allowed); the target is a small threaded server in this process. 127.0.0.1 only.

Run: .venv/bin/python bench/pod_gateway.py [--requests 5000] [--megabytes 256]
"""

from __future__ import annotations

import argparse
import json
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

MESSAGE = 200
CHUNK = 64 * 1024


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Target:
    """Answers each MESSAGE-byte request with MESSAGE bytes; a request starting with b"B"
    is a bulk upload of the size its first line says, answered once with b"done"."""

    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = int(self.listener.getsockname()[1])
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                connection, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(connection,), daemon=True).start()

    def _serve(self, connection: socket.socket) -> None:
        connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        with connection:
            while request := receive_exactly(connection, MESSAGE):
                if request.startswith(b"B"):
                    remaining = int(request[1:].split(b"\n", 1)[0])
                    while remaining > 0:
                        remaining -= len(connection.recv(min(CHUNK, remaining)))
                    connection.sendall(b"done")
                else:
                    connection.sendall(request)


def receive_exactly(connection: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = connection.recv(size - len(data))
        if not chunk:
            return b""
        data += chunk
    return data


def connect(port: int) -> socket.socket:
    connection = socket.create_connection(("127.0.0.1", port), timeout=30)
    connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return connection


def round_trips(port: int, requests: int) -> list[float]:
    request = b"r" * MESSAGE
    seconds = []
    with connect(port) as connection:
        for _ in range(requests):
            start = time.perf_counter()
            connection.sendall(request)
            receive_exactly(connection, MESSAGE)
            seconds.append(time.perf_counter() - start)
    return seconds


def bulk(port: int, megabytes: int) -> float:
    size = megabytes * 1024 * 1024
    header = f"B{size}\n".encode().ljust(MESSAGE, b" ")
    block = b"x" * CHUNK
    with connect(port) as connection:
        start = time.perf_counter()
        connection.sendall(header)
        sent = 0
        while sent < size:
            piece = block[: min(CHUNK, size - sent)]
            connection.sendall(piece)
            sent += len(piece)
        receive_exactly(connection, 4)
        return megabytes / (time.perf_counter() - start)


def connects(port: int, count: int) -> list[float]:
    seconds = []
    for _ in range(count):
        start = time.perf_counter()
        with connect(port) as connection:
            connection.sendall(b"c" * MESSAGE)
            receive_exactly(connection, MESSAGE)
        seconds.append(time.perf_counter() - start)
    return seconds


def micro(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    return {
        "p50_us": round(statistics.median(ordered) * 1e6, 1),
        "p99_us": round(ordered[int(len(ordered) * 0.99) - 1] * 1e6, 1),
    }


def start_gateway(listen: int, target: int, log: Path) -> subprocess.Popen[bytes]:
    process = subprocess.Popen(
        [sys.executable, "-m", "gpuplane.backends.local.pod_gateway", "--subnet",
         "10.244.0.0/24", f"127.0.0.1:{listen}=127.0.0.1:{target}"],
        stdout=log.open("wb"), stderr=subprocess.STDOUT,
    )  # fmt: skip
    deadline = time.monotonic() + 20
    while "relaying" not in log.read_text():
        if process.poll() is not None or time.monotonic() > deadline:
            raise SystemExit(f"pod gateway did not start: {log.read_text()}")
        time.sleep(0.05)
    return process


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=5000)
    parser.add_argument("--megabytes", type=int, default=256)
    parser.add_argument("--connects", type=int, default=1000)
    args = parser.parse_args()
    target = Target()
    relay_port = free_port()
    with tempfile.TemporaryDirectory() as scratch:
        gateway = start_gateway(relay_port, target.port, Path(scratch) / "gateway.log")
        try:
            result: dict[str, Any] = {"bench": "pod_gateway", "message_bytes": MESSAGE}
            for name, port in (("direct", target.port), ("relayed", relay_port)):
                round_trips(port, 200)  # warm-up
                result[name] = {
                    "round_trip": micro(round_trips(port, args.requests)),
                    "connect_and_exchange": micro(connects(port, args.connects)),
                    "bulk_mb_per_s": round(bulk(port, args.megabytes), 1),
                }
        finally:
            gateway.terminate()
            gateway.wait(10)
    direct, relayed = result["direct"], result["relayed"]
    result["added"] = {
        "round_trip_p50_us": round(
            relayed["round_trip"]["p50_us"] - direct["round_trip"]["p50_us"], 1
        ),
        "round_trip_p99_us": round(
            relayed["round_trip"]["p99_us"] - direct["round_trip"]["p99_us"], 1
        ),
        "connect_p50_us": round(
            relayed["connect_and_exchange"]["p50_us"] - direct["connect_and_exchange"]["p50_us"],
            1,
        ),
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
