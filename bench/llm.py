"""The chat model service, measured from outside as a client feels it (127.0.0.1 only):

- cold: the process spawned and a streamed request sent at once, retried while the
  service answers 503 (loading): spawn to first token, and the service's own cold-start
  phases (llm_startup_phase_seconds);
- warm time to first token: sequential streamed requests, p50/p99;
- single-stream decode: tokens per second after the first token, one long answer;
- concurrency: 1, 8, 32 (``--streams``) streams at once: aggregate tokens/s, TTFT and
  inter-token gaps p50/p99 as the client sees them;
- with ``--activator URL`` (a proxy in front of the same service) the same gaps through it,
  to show what the proxy adds per event.
Prints JSON.

Run (CPU here): .venv/bin/python bench/llm.py
     (GPU host): python3 bench/llm.py --device cuda --model-dir PREPARED
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp

MODEL = "SmolLM2-135M-Instruct"
LONG_PROMPT = "Write the numbers from 1 to 1000 as words, one per line."  # runs to max_tokens
SHORT_PROMPTS = ("Say hello.", "Name a colour.", "What is 2 + 2?", "Name a fruit.")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def quantiles(values: list[float]) -> dict[str, float]:
    if not values:
        return {"p50_ms": 0.0, "p99_ms": 0.0}
    ordered = sorted(values)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    return {"p50_ms": round(statistics.median(ordered) * 1000, 2), "p99_ms": round(p99 * 1000, 2)}


async def stream(
    session: aiohttp.ClientSession, url: str, prompt: str, max_tokens: int
) -> dict[str, Any]:
    """One streamed chat request: when each event arrived (seconds from sending)."""
    body = {"model": MODEL, "messages": [{"role": "user", "content": prompt}], "stream": True,
            "max_tokens": max_tokens, "temperature": 0}  # fmt: skip
    sent = time.perf_counter()
    times: list[float] = []
    async with session.post(f"{url}/v1/chat/completions", json=body) as response:
        if response.status != 200:
            return {"status": response.status, "times": []}
        async for line in response.content:
            if line.startswith(b"data: {") and b'"content"' in line:
                times.append(time.perf_counter() - sent)
    return {"status": 200, "times": times}


async def cold(args: argparse.Namespace, url: str, command: list[str]) -> dict[str, Any]:
    """Spawn the service and ask at once; retries while it answers 503 or is not yet
    listening. Spawn to first token is what a wake costs once the pod is scheduled."""
    spawned = time.perf_counter()
    with Path(args.log).open("w") as log:
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=log)
    attempts = 0
    async with aiohttp.ClientSession() as session:
        while True:
            attempts += 1
            asked = time.perf_counter() - spawned
            try:
                result = await stream(session, url, SHORT_PROMPTS[0], 8)
                if result["status"] == 200 and result["times"]:
                    first = asked + result["times"][0]
                    break
            except aiohttp.ClientConnectionError:
                pass
            if process.poll() is not None:
                raise SystemExit(f"the service exited ({process.returncode}); see {args.log}")
            await asyncio.sleep(0.02)
        async with session.get(f"{url}/metrics") as response:
            metrics = await response.text()
    phases = {m[0]: round(float(m[1]), 3) for m in re.findall(
        r'llm_startup_phase_seconds\{.*phase="([^"]+)"\} (\S+)', metrics)}  # fmt: skip
    device = re.search(r'llm_device_info\{.*device_name="([^"]+)".*engine="([^"]+)"', metrics)
    args.process = process
    return {"spawn_to_first_token_s": round(first, 3), "attempts": attempts,
            "startup_phases_s": phases,
            "device": device.group(1) if device else "",
            "engine": device.group(2) if device else ""}  # fmt: skip


async def warm_ttft(url: str, requests: int) -> dict[str, Any]:
    firsts = []
    async with aiohttp.ClientSession() as session:
        for i in range(requests):
            result = await stream(session, url, SHORT_PROMPTS[i % len(SHORT_PROMPTS)], 4)
            if result["times"]:
                firsts.append(result["times"][0])
    return {"requests": requests, **quantiles(firsts)}


async def decode(url: str, max_tokens: int) -> dict[str, Any]:
    async with aiohttp.ClientSession() as session:
        result = await stream(session, url, LONG_PROMPT, max_tokens)
    times = result["times"]
    rate = (len(times) - 1) / (times[-1] - times[0]) if len(times) > 2 else 0.0
    return {"tokens": len(times), "tokens_per_second": round(rate, 1)}


async def concurrent(url: str, streams: int, max_tokens: int) -> dict[str, Any]:
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector) as session:
        started = time.perf_counter()
        results = await asyncio.gather(
            *(stream(session, url, LONG_PROMPT, max_tokens) for _ in range(streams))
        )
        wall = time.perf_counter() - started
    tokens = sum(len(r["times"]) for r in results)
    gaps = [b - a for r in results for a, b in zip(r["times"], r["times"][1:], strict=False)]
    return {
        "streams": streams, "tokens": tokens, "wall_s": round(wall, 3),
        "failed": sum(1 for r in results if r["status"] != 200),
        "aggregate_tokens_per_second": round(tokens / wall, 1),
        "ttft": quantiles([r["times"][0] for r in results if r["times"]]),
        "inter_token": quantiles(gaps),
    }  # fmt: skip


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--python", default=sys.executable)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--engine", default="auto")
    parser.add_argument("--dtype", default="bfloat16")
    parser.add_argument("--model-dir", type=Path)
    parser.add_argument("--streams", default="1,8,32")
    parser.add_argument("--max-tokens", type=int, default=128)
    parser.add_argument("--ttft-requests", type=int, default=50)
    parser.add_argument("--activator", help="a proxy in front of the same service, e.g. "
                        "http://127.0.0.1:8080/ns/llm: its gaps are measured too")  # fmt: skip
    parser.add_argument("--service-arg", action="append", default=[],
                        help="one more flag for gpuplane-llm (repeatable)")  # fmt: skip
    parser.add_argument("--url", help="a running service (no cold start measured)")
    parser.add_argument("--log", default="gpuplane-llm-bench.log", help="the service's log")
    args = parser.parse_args()
    args.process = None
    report: dict[str, Any] = {"host_cpus": os.cpu_count()}
    url = args.url
    try:
        if url is None:
            port = free_port()
            url = f"http://127.0.0.1:{port}"
            command = [args.python, "-m", "gpuplane.llm.main", f"--port={port}",
                       f"--device={args.device}", f"--engine={args.engine}",
                       f"--dtype={args.dtype}", "--max-streams=64"]  # fmt: skip
            if args.model_dir:
                command.append(f"--model-dir={args.model_dir}")
            command += args.service_arg
            report["cold"] = await cold(args, url, command)
        report["warm_ttft"] = await warm_ttft(url, args.ttft_requests)
        report["single_stream_decode"] = await decode(url, 256)
        report["concurrency"] = [
            await concurrent(url, int(n), args.max_tokens) for n in args.streams.split(",")
        ]
        if args.activator:
            direct = await concurrent(url, 1, args.max_tokens)
            proxied = await concurrent(args.activator, 1, args.max_tokens)
            report["activator"] = {"direct": direct["inter_token"],
                                   "through_activator": proxied["inter_token"]}  # fmt: skip
    finally:
        if args.process is not None:
            args.process.terminate()
            args.process.wait(timeout=30)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    asyncio.run(main())
