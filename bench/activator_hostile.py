"""The activator under a bounded hostile mix on loopback (JSON): its RSS against the pod's
256 Mi, well-behaved clients' p99 through it against the quiet figure, and every request
held at zero answered after the wake (0 lost).

The mix, all at once against one activator with its default limits (flags): one
connection sending an endless header (64 MiB), 100 bodies stalled after 10 of 100 bytes,
70 connections x 16 pipelined 250 KiB POSTs to a Deployment at zero, and 1,000 GETs held
at zero. Meanwhile 100 requests/s of well-behaved clients go to a ready backend. Then the
Deployment at zero is scaled to 1 and every held request's answer is counted.
Run: .venv/bin/python bench/activator_hostile.py [--seconds 10]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
import time
from pathlib import Path
from typing import Any

from lightkube import Client
from lightkube.resources.apps_v1 import Deployment

from activator import (
    BACKEND,
    NS,
    answers,
    manifests,
    on_own_cluster,
    open_loop,
    process,
    quantiles,
    wait,
)
from gpuplane.backends.local.activator_service import start_activator, stop_activator
from gpuplane.backends.local.services import ACTIVATOR, Services, free_port
from gpuplane.backends.local.state import LocalState
from gpuplane.kube.apply import apply_documents
from proc import process_figures

POD_LIMIT_MIB = 256
BODY = b"b" * (250 * 1024)


async def read_status(reader: asyncio.StreamReader) -> int:
    """One answer's status (its body read and dropped); 0 when the connection ended."""
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except (asyncio.IncompleteReadError, ConnectionError):
        return 0
    length = 0
    for line in head.lower().split(b"\r\n"):
        if line.startswith(b"content-length:"):
            length = int(line.split(b":")[1])
    with contextlib.suppress(asyncio.IncompleteReadError, ConnectionError):
        await reader.readexactly(length)
    return int(head.split(b" ", 2)[1])


async def connection(port: int, payload: bytes, answers_wanted: int) -> list[int]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(payload)
    with contextlib.suppress(ConnectionError):
        await writer.drain()
    statuses = [await read_status(reader) for _ in range(answers_wanted)]
    writer.close()
    return statuses


async def endless_header(port: int, megabytes: int) -> int:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"GET /echo/x HTTP/1.1\r\nHost: a\r\nX-Endless: ")
    with contextlib.suppress(ConnectionError):
        for _ in range(megabytes):
            writer.write(b"y" * (1024 * 1024))
            await writer.drain()
    status = await read_status(reader)
    writer.close()
    return status


async def stalled_body(port: int) -> int:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"POST /echo/x HTTP/1.1\r\nHost: a\r\nContent-Length: 100\r\n\r\n0123456789")
    status = await read_status(reader)  # 0: closed by the body deadline
    writer.close()
    return status


def held(port: int) -> list[Any]:
    pipelined = (
        f"POST /sleepy/x HTTP/1.1\r\nHost: a\r\nContent-Length: {len(BODY)}\r\n\r\n".encode() + BODY
    ) * 16
    get = b"GET /sleepy/x HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"
    return [connection(port, pipelined, 16) for _ in range(70)] + [
        connection(port, get, 1) for _ in range(1000)
    ]


def rss_sampler(pid: int, peak: list[float], stop: asyncio.Event) -> Any:
    async def sample() -> None:
        while not stop.is_set():
            peak[0] = max(peak[0], process_figures(pid)[1])
            await asyncio.sleep(0.2)

    return sample()


async def hostile_window(
    port: int, well_behaved: str, seconds: float, pid: int, wake: Any
) -> dict[str, Any]:
    peak = [process_figures(pid)[1]]
    stop = asyncio.Event()
    sampler = asyncio.create_task(rss_sampler(pid, peak, stop))
    header = asyncio.create_task(endless_header(port, 64))
    slow = [asyncio.create_task(stalled_body(port)) for _ in range(100)]
    waiting = [asyncio.create_task(task) for task in held(port)]
    await asyncio.sleep(2)  # everything arrived and is held
    latencies = await open_loop(well_behaved, 100, seconds)
    rss_under_attack = peak[0]
    woke = time.perf_counter()
    await asyncio.to_thread(wake)
    outcomes = await asyncio.gather(*waiting)
    answered_after_s = round(time.perf_counter() - woke, 2)
    slow_outcomes = await asyncio.gather(*slow)
    header_status = await header
    stop.set()
    await sampler
    flat = [status for statuses in outcomes for status in statuses]
    return {
        "well_behaved": quantiles(latencies),
        "activator_rss_mib_peak": round(peak[0], 1),
        "activator_rss_mib_peak_before_wake": round(rss_under_attack, 1),
        "held_sent": len(flat),
        "held_answered_200": flat.count(200),
        "held_answered_503": flat.count(503),
        "held_lost": flat.count(0),
        "all_answered_after_wake_s": answered_after_s,
        "endless_header_status": header_status,
        "stalled_bodies_closed": slow_outcomes.count(0),
    }


def run(state: LocalState, client: Client, work: Path, args: argparse.Namespace) -> dict[str, Any]:
    apply_documents(client, manifests("echo", 1, True) + manifests("sleepy", 0, False))
    backend_port = free_port()
    backends = [
        {"name": name, "namespace": NS, "deployment": name, "service": name,
         "upstream": f"http://127.0.0.1:{backend_port}", "match": {"pathPrefix": f"/{name}/"},
         "stripPrefix": True} for name in ("echo", "sleepy")]  # fmt: skip
    address = start_activator(state, client, backends, {"maxHeld": 5000, "maxHoldSeconds": 300})
    port = int(address.url.rsplit(":", 1)[1])
    pid = Services(state).pid(ACTIVATOR)
    assert pid is not None
    well_behaved = f"{address.url}/echo/x"
    report: dict[str, Any] = {"pod_limit_mib": POD_LIMIT_MIB}
    try:
        with process([sys.executable, "-c", BACKEND, str(backend_port)], work / "backend.log"):
            wait("echo ready", lambda: answers(well_behaved))
            quiet = asyncio.run(open_loop(well_behaved, 100, args.seconds))
            report["quiet"] = {**quantiles(quiet), "rss_mib": round(process_figures(pid)[1], 1)}

            def wake() -> None:
                client.patch(Deployment, "sleepy", {"spec": {"replicas": 1}}, namespace=NS)

            report["hostile"] = asyncio.run(
                hostile_window(port, well_behaved, args.seconds, pid, wake)
            )
        quiet_p99 = report["quiet"]["p99_ms"]
        report["p99_ratio_hostile_to_quiet"] = round(
            report["hostile"]["well_behaved"]["p99_ms"] / quiet_p99, 2
        )
    finally:
        stop_activator(state)
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    on_own_cluster(run, parser.parse_args())


if __name__ == "__main__":
    main()
