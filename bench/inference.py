"""Throughput and latency of the embeddings service (gpuplane-inference) at client batch
sizes 1, 8, 32 and 128: requests/s, texts/s, p50/p99 latency, with the service's own
device and cold-start phases read back from its /metrics. Prints JSON.

Without --url it starts the service here on 127.0.0.1 (CPU: numpy). With --url it
measures a running one, which must be on loopback: on a kubelet node, run this inside the
pod's network namespace (nsenter -t PID -n), as tests/e2e/test_gpu_node.py does.
Goal (issue: the inference service): GPU texts/s at least 20x this machine's CPU figure.
Run: .venv/bin/python bench/inference.py [--seconds 5] [--concurrency 8] [-o FILE]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import re
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import httpx2


def free_port() -> int:
    """A free port on loopback (not the backend's helper: this bench runs on the GPU host
    too, where only the service's own packages are installed)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


LOOPBACK = {"127.0.0.1", "::1", "localhost"}
MODEL = "all-MiniLM-L6-v2"
# Sentences of everyday length (10-20 tokens), varied so no cache could help.
WORDS = "the GPU node runs a small model that turns each sentence into a vector".split()  # noqa: SIM905


def sentence(i: int) -> str:
    return " ".join(WORDS[(i * 7 + k) % len(WORDS)] for k in range(8 + i % 7)) + f" {i}"


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


Post = Callable[[dict[str, Any]], Awaitable[int]]  # a request body -> its status code


@contextlib.asynccontextmanager
async def poster(url: str, concurrency: int, client: str) -> AsyncIterator[Post]:
    """POST to the embeddings endpoint, keep-alive, with ``client``: httpx2, or aiohttp,
    whose own cost per request is about a third of httpx2's (0.12 against 0.46 ms a
    round trip on this repository's CPU host, server included): batch 1 latency is
    otherwise partly the client's."""
    endpoint = f"{url}/v1/embeddings"
    if client == "aiohttp":
        import aiohttp  # noqa: PLC0415 - the service's own dependency

        connector = aiohttp.TCPConnector(limit=concurrency)
        async with aiohttp.ClientSession(connector=connector) as session:

            async def post_aiohttp(body: dict[str, Any]) -> int:
                async with session.post(endpoint, json=body) as answer:
                    await answer.read()
                    return answer.status

            yield post_aiohttp
        return
    limits = httpx2.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx2.AsyncClient(trust_env=False, timeout=120, limits=limits) as http:

        async def post_httpx(body: dict[str, Any]) -> int:
            return (await http.post(endpoint, json=body)).status_code

        yield post_httpx


async def measure(
    url: str,
    batch: int,
    seconds: float,
    concurrency: int,
    *,
    encoding: str = "float",
    client_name: str = "httpx2",
) -> dict[str, Any]:
    latencies: list[float] = []
    errors = 0
    counter = 0
    deadline = time.perf_counter() + seconds

    async def client(post: Post) -> None:
        nonlocal errors, counter
        while time.perf_counter() < deadline:
            counter += 1
            body = {
                "model": MODEL,
                "input": [sentence(counter * batch + k) for k in range(batch)],
                "encoding_format": encoding,
            }
            start = time.perf_counter()
            if await post(body) == 200:
                latencies.append(time.perf_counter() - start)
            else:
                errors += 1

    async with poster(url, concurrency, client_name) as post:
        await post({"model": MODEL, "input": ["warm"] * batch})
        started = time.perf_counter()
        await asyncio.gather(*(client(post) for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
    return {
        "batch_size": batch,
        "concurrency": concurrency,
        "client": client_name,
        "encoding_format": encoding,
        "requests": len(latencies),
        "errors": errors,
        "requests_per_second": round(len(latencies) / elapsed, 2),
        "texts_per_second": round(len(latencies) * batch / elapsed, 1),
        "p50_ms": round(percentile(latencies, 0.50) * 1000, 2) if latencies else None,
        "p99_ms": round(percentile(latencies, 0.99) * 1000, 2) if latencies else None,
        "mean_ms": round(statistics.fmean(latencies) * 1000, 2) if latencies else None,
    }


def service_facts(url: str) -> dict[str, Any]:
    text = httpx2.get(f"{url}/metrics", trust_env=False, timeout=10).text
    facts: dict[str, Any] = {"cold_start_phases_s": {}}
    for line in text.splitlines():
        device = re.match(r'inference_device_info\{.*device="([^"]*)",device_name="([^"]*)"', line)
        if device:
            facts["device"], facts["device_name"] = device.group(1), device.group(2)
        phase = re.match(r'inference_startup_phase_seconds\{.*phase="([^"]+)"\} (\S+)', line)
        if phase:
            facts["cold_start_phases_s"][phase.group(1)] = round(float(phase.group(2)), 3)
        total = re.match(r"inference_startup_seconds\{.*\} (\S+)", line)
        if total:
            facts["cold_start_s"] = round(float(total.group(1)), 3)
    return facts


@contextlib.contextmanager
def local_service(
    max_batch: int, max_wait_ms: float, engine: str, extra: list[str]
) -> Iterator[str]:
    port = free_port()
    command = [sys.executable, "-m", "gpuplane.inference.main", "--port", str(port),
               f"--max-batch-size={max_batch}", "--max-queue=8192",
               f"--max-wait-ms={max_wait_ms}", f"--engine={engine}", *extra]  # fmt: skip
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            with contextlib.suppress(httpx2.TransportError):
                if httpx2.get(f"{url}/readyz", trust_env=False).status_code == 200:
                    break
            time.sleep(0.1)
        yield url
    finally:
        process.terminate()
        process.wait(10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--url", help="a running service on loopback (default: start one here)")
    parser.add_argument("--seconds", type=float, default=5.0, help="per batch size")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--batch-sizes", default="1,8,32,128")
    parser.add_argument("--server-max-batch", type=int, default=128)
    parser.add_argument("--server-max-wait-ms", type=float, default=0.0)
    parser.add_argument("--server-engine", default="auto", help="the service's --engine")
    parser.add_argument("--encoding-format", choices=["float", "base64"], default="float")
    parser.add_argument("--client", choices=["httpx2", "aiohttp"], default="httpx2")
    parser.add_argument(
        "--server-arg", action="append", default=[],
        help="one more flag for the service this bench starts, e.g. --server-arg=--no-cuda-graphs",
    )  # fmt: skip
    parser.add_argument("-o", "--output", type=Path)
    args = parser.parse_args()
    if args.url and urlparse(args.url).hostname not in LOOPBACK:
        parser.error(f"--url {args.url}: load goes to loopback only (127.0.0.1 or ::1)")
    sizes = [int(s) for s in args.batch_sizes.split(",")]
    with contextlib.ExitStack() as stack:
        service = local_service(
            args.server_max_batch, args.server_max_wait_ms, args.server_engine, args.server_arg
        )
        url = args.url or stack.enter_context(service)
        results = [
            asyncio.run(
                measure(
                    url,
                    b,
                    args.seconds,
                    args.concurrency,
                    encoding=args.encoding_format,
                    client_name=args.client,
                )
            )
            for b in sizes
        ]
        report = {"model": MODEL, "url": url, **service_facts(url), "results": results}
    text = json.dumps(report, indent=2)
    if args.output:
        args.output.write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
