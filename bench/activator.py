"""The activator's cost and capacity on the local platform (its own cluster, brought up and
down here): added latency p50/p99 against calling the backend directly at 100 and 500
requests/s (open loop, 127.0.0.1 only; alternating windows, medians, host stalls flagged
by a canary) and the activator process's CPU time per proxied request (from /proc); how
many requests one activator holds before the first failure; on a wake from zero, the time
from the first held request to its response; and for server-sent event streams shaped like
a chat model's (one small JSON chunk a token, 5 ms apart: 200 tokens/s), the delay the
activator adds to each event, 1 and 16 streams at once. Prints JSON.
Goals: p99 added <= 2 ms a request, <= 1 ms an event, on this machine.
Run: .venv/bin/python bench/activator.py [--seconds 10] [--rounds 5] [--held 2000]
     [--streams 1 16] [--stream-events 400] [--gap-ms 5]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import httpx2
from lightkube import Client
from lightkube.resources.apps_v1 import Deployment
from lightkube.resources.core_v1 import Namespace

from gpuplane.backends.local.activator_service import start_activator, stop_activator
from gpuplane.backends.local.services import ACTIVATOR, Services, free_port
from gpuplane.backends.local.state import LocalState
from gpuplane.downscaler.resource import DownscalePolicy
from gpuplane.kube import connect
from gpuplane.kube.apply import apply_documents
from platforms import kwok_platform
from proc import process_figures

REPO = Path(__file__).resolve().parents[1]
CLUSTER = "gpuplane-bench-activator"
NS = "bench"
BACKEND = """
import asyncio, json, sys, time
from aiohttp import web
async def echo(request):
    return web.Response(body=await request.read() or b"ok")
async def events(request):
    # Server-sent events shaped like a chat model's stream (one small JSON chunk a token),
    # each stamped with the system-wide monotonic clock when it is written.
    count, gap = int(request.query["n"]), float(request.query["gap_ms"]) / 1000
    answer = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
    await answer.prepare(request)
    delta = {"choices": [{"index": 0, "delta": {"content": " token"}}], "object": "chunk"}
    for _ in range(count):
        chunk = dict(delta, sent_ns=time.monotonic_ns())
        await answer.write(b"data: " + json.dumps(chunk).encode() + b"\\n\\n")
        await asyncio.sleep(gap)
    await answer.write(b"data: [DONE]\\n\\n")
    return answer
app = web.Application()
app.router.add_get("/events", events)
app.router.add_route("*", "/{tail:.*}", echo)
web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), print=None, access_log=None)
"""


def wait(what: str, condition: Any, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise SystemExit(f"bench: {what} did not happen in {timeout:.0f}s")
        time.sleep(0.1)


def answers(url: str) -> bool:
    with contextlib.suppress(httpx2.TransportError):
        return httpx2.get(url, trust_env=False, timeout=2).status_code == 200
    return False


def manifests(name: str, replicas: int, selected: bool) -> list[dict[str, Any]]:
    labels = {"app.kubernetes.io/name": name}
    if selected:
        labels["app.kubernetes.io/part-of"] = "bench"
    template = {"metadata": {"labels": labels}, "spec": {"containers": [
        {"name": "app", "image": "registry.k8s.io/pause:3.10"}]}}  # fmt: skip
    return [
        {"apiVersion": "apps/v1", "kind": "Deployment",
         "metadata": {"name": name, "namespace": NS, "labels": labels},
         "spec": {"replicas": replicas,
                  "selector": {"matchLabels": {"app.kubernetes.io/name": name}},
                  "template": template}},
        {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "namespace": NS},
         "spec": {"selector": {"app.kubernetes.io/name": name}, "ports": [{"port": 80}]}},
    ]  # fmt: skip


async def open_loop(url: str, rate: float, seconds: float) -> list[float]:
    """Requests at a fixed rate whatever the answers' speed; each one's latency. The client
    is aiohttp (the lightest here): on two cores the client's own cost is in every figure,
    the same for both paths."""
    latencies: list[float] = []
    connector = aiohttp.TCPConnector(limit=200)
    async with aiohttp.ClientSession(connector=connector) as http:

        async def one() -> None:
            start = time.perf_counter()
            async with http.post(url, data=b"x" * 64) as answer:
                await answer.read()
                if answer.status == 200:
                    latencies.append(time.perf_counter() - start)

        tasks = []
        begin = time.perf_counter()
        for index in range(int(rate * seconds)):
            delay = begin + index / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one()))
        await asyncio.gather(*tasks)
    return latencies


def quantiles(latencies: list[float]) -> dict[str, float]:
    ordered = sorted(latencies)
    pick = lambda q: ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]  # noqa: E731
    return {"p50_ms": round(pick(0.5) * 1000, 3), "p99_ms": round(pick(0.99) * 1000, 3),
            "mean_ms": round(statistics.fmean(ordered) * 1000, 3), "n": len(ordered)}  # fmt: skip


async def with_canary(url: str, rate: float, seconds: float, canary: str) -> dict[str, Any]:
    """One window at ``rate`` to ``url`` and, beside it in the same client, 20 requests/s
    straight to the backend: when the canary is slow too (over 20 ms), the host stalled
    (another process had both cores), not the path under test."""
    measured, beside = await asyncio.gather(
        open_loop(url, rate, seconds), open_loop(canary, 20, seconds)
    )
    return {**quantiles(measured), "host_stall": max(beside, default=0.0) > 0.020}


def activator_pid(state: LocalState) -> int:
    pid = Services(state).pid(ACTIVATOR)
    if pid is None:
        raise SystemExit("bench: the activator is not running")
    return pid


def median_of(windows: dict[str, list[dict[str, Any]]], path: str, key: str) -> float:
    return round(statistics.median(w[key] for w in windows[path]), 3)


def added(windows: dict[str, list[dict[str, Any]]], key: str) -> float:
    """What the activator adds to ``key``: medians over each path's windows, subtracted."""
    return round(median_of(windows, "activator", key) - median_of(windows, "direct", key), 3)


def compare(
    direct: str, proxied: str, rate: float, args: argparse.Namespace, activator_pid: int
) -> dict[str, Any]:
    """Alternating windows, direct then through the activator, ``--rounds`` times. On two
    cores a single stall of the host (tens of ms, a few times a minute) decides a 10 s
    window's p99, so each path's p99 is the median over its windows, and every window is
    reported with whether the canary saw the host stall. An activator window also reports
    the activator's CPU time per request it proxied (the canary goes direct): on a small
    host that is what its latency queues behind."""
    windows: dict[str, list[dict[str, Any]]] = {"direct": [], "activator": []}
    for _ in range(args.rounds):
        for path, url in (("direct", direct), ("activator", proxied)):
            before, _ = process_figures(activator_pid)
            window = asyncio.run(with_canary(url, rate, args.seconds, direct))
            if path == "activator":
                spent = process_figures(activator_pid)[0] - before
                window["cpu_us_per_request"] = round(spent / max(window["n"], 1) * 1e6)
            windows[path].append(window)

    def median(path: str, key: str) -> float:
        return median_of(windows, path, key)

    quiet = [
        round(via["p99_ms"] - plain["p99_ms"], 3)
        for plain, via in zip(windows["direct"], windows["activator"], strict=True)
        if not plain["host_stall"] and not via["host_stall"]
    ]
    return {
        "added_p50_ms": added(windows, "p50_ms"),
        "added_p99_ms": added(windows, "p99_ms"),
        "added_p99_ms_rounds_without_host_stall": quiet,
        "activator_cpu_us_per_request": median("activator", "cpu_us_per_request"),
        "windows": windows,
    }


async def event_delays(url: str, streams: int, events: int, gap_ms: float) -> list[float]:
    """``streams`` event streams at once, ``events`` events each, ``gap_ms`` apart: for
    every event, the time from the backend's write to the client's read (both on this
    host's monotonic clock, so the figure is a delay, not a gap)."""
    delays: list[float] = []

    async def one(http: aiohttp.ClientSession) -> None:
        async with http.get(url, params={"n": str(events), "gap_ms": str(gap_ms)}) as answer:
            async for line in answer.content:
                if line.startswith(b"data: {"):
                    read = time.monotonic_ns()
                    delays.append((read - json.loads(line[6:])["sent_ns"]) / 1e9)

    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=streams)) as http:
        await asyncio.gather(*(one(http) for _ in range(streams)))
    return delays


def compare_streams(
    direct: str, proxied: str, streams: int, args: argparse.Namespace
) -> dict[str, Any]:
    """Alternating windows of ``streams`` concurrent event streams, direct then through the
    activator, ``--rounds`` times; each path's quantiles are medians over its windows."""
    windows: dict[str, list[dict[str, Any]]] = {"direct": [], "activator": []}
    for _ in range(args.rounds):
        for path, url in (("direct", direct), ("activator", proxied)):
            delays = asyncio.run(event_delays(url, streams, args.stream_events, args.gap_ms))
            windows[path].append(quantiles(delays))
    return {
        "streams": streams,
        "events_per_stream": args.stream_events,
        "gap_ms": args.gap_ms,
        "added_p50_ms_per_event": added(windows, "p50_ms"),
        "added_p99_ms_per_event": added(windows, "p99_ms"),
        "windows": windows,
    }


async def hold_many(url: str, metrics: str, count: int) -> dict[str, Any]:
    """``count`` requests to a backend that never becomes ready: how many are held at once."""
    limits = httpx2.Limits(max_connections=count + 10)
    async with httpx2.AsyncClient(trust_env=False, timeout=120, limits=limits) as http:
        tasks = [asyncio.create_task(http.get(url)) for _ in range(count)]
        peak, deadline = 0.0, time.monotonic() + 60
        while time.monotonic() < deadline and peak < count:
            await asyncio.sleep(0.5)
            text = (await http.get(metrics)).text
            held = [line for line in text.splitlines()
                    if line.startswith("gpuplane_activator_held_requests{")]  # fmt: skip
            peak = max(peak, sum(float(line.rsplit(" ", 1)[1]) for line in held))
            if any(task.done() for task in tasks):
                break
        failed = sum(1 for task in tasks if task.done())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    return {"asked": count, "held_at_peak": int(peak), "failed_before_peak": failed}


@contextlib.contextmanager
def process(command: list[str], log: Path) -> Iterator[subprocess.Popen[bytes]]:
    with log.open("wb") as out:
        running = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
    try:
        yield running
    finally:
        running.terminate()
        running.wait(10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--held", type=int, default=2000)
    parser.add_argument(
        "--rounds", type=int, default=5, help="direct/activator windows per rate (alternating)"
    )
    parser.add_argument("--rates", type=float, nargs="+", default=[100.0, 500.0])
    parser.add_argument(
        "--streams", type=int, nargs="+", default=[1, 16], help="concurrent event streams"
    )
    parser.add_argument("--stream-events", type=int, default=400, help="events per stream")
    parser.add_argument(
        "--gap-ms", type=float, default=5.0, help="between events (5 ms: 200 tokens/s)"
    )
    on_own_cluster(run, parser.parse_args())


Bench = Callable[[LocalState, Client, Path, argparse.Namespace], dict[str, Any]]


def on_own_cluster(bench: Bench, args: argparse.Namespace) -> None:
    """``bench(state, client, work, args)`` on a KWOK cluster of its own with the bench's
    namespace, brought up and down here; its report printed as JSON."""
    with tempfile.TemporaryDirectory() as scratch:
        work = Path(scratch)
        platform = kwok_platform(work / "platform.yaml", CLUSTER)
        cli = [sys.executable, "-m", "gpuplane.cli.main", "-f", str(platform)]
        subprocess.run([*cli, "up"], check=True, capture_output=True, timeout=600)
        try:
            kubeconfig = Path(
                subprocess.run(
                    [*cli, "kubeconfig"], check=True, capture_output=True, text=True
                ).stdout.strip()
            )
            client = connect(kubeconfig)
            client.create(Namespace.from_dict({"metadata": {"name": NS}}))
            state = LocalState(kubeconfig.parent.parent, CLUSTER)
            print(json.dumps(bench(state, client, work, args), indent=2))
            client.delete(Namespace, NS)
        finally:
            subprocess.run([*cli, "down"], check=False, capture_output=True, timeout=300)


def run(state: LocalState, client: Client, work: Path, args: argparse.Namespace) -> dict[str, Any]:
    apply_documents(
        client, manifests("echo", 1, selected=True) + manifests("ghost", 0, selected=False)
    )
    backend_port = free_port()
    backends = [
        {"name": name, "namespace": NS, "deployment": name, "service": name,
         "upstream": f"http://127.0.0.1:{backend_port}", "match": {"pathPrefix": f"/{name}/"},
         "stripPrefix": True} for name in ("echo", "ghost")]  # fmt: skip
    backend_cmd = [sys.executable, "-c", BACKEND, str(backend_port)]
    report: dict[str, Any] = {"cluster": CLUSTER}
    # The activator as the local backend runs it (the demo's too): supervised, its own
    # token, on 127.0.0.1, scraped by the cluster's Prometheus.
    address = start_activator(
        state, client, backends, {"maxHeld": args.held * 2, "maxHoldSeconds": 120}
    )
    direct, proxied = f"http://127.0.0.1:{backend_port}/x", f"{address.url}/echo/x"
    metrics = f"{address.metrics_url}/metrics"
    try:
        with process(backend_cmd, work / "backend.log") as backend:
            wait("backend", lambda: answers(direct))
            wait("echo ready", lambda: answers(proxied))
            for rate in args.rates:
                report[f"{rate:g}_rps"] = compare(direct, proxied, rate, args, activator_pid(state))
            events = (f"http://127.0.0.1:{backend_port}/events", f"{address.url}/echo/events")
            report["event_streams"] = [compare_streams(*events, n, args) for n in args.streams]
            report["held"] = asyncio.run(hold_many(f"{address.url}/ghost/x", metrics, args.held))
            # The wake: the downscaler scales echo to zero on the activator's counter.
            counter = f'gpuplane_activator_requests_total{{namespace="{NS}"}}'
            signal = f"sum by (deployment) (rate({counter}[6s]))"
            spec = {
                "selector": {"matchLabels": {"app.kubernetes.io/part-of": "bench"}},
                "interval": "1s",
                "idleFor": "4s",
                "gracePeriod": "1s",
                "signals": [{"name": "requests", "query": signal, "idleBelow": 0.05}],
            }
            policy = {"apiVersion": "gpuplane.io/v1alpha1", "kind": "DownscalePolicy",
                      "metadata": {"name": "idle", "namespace": NS}, "spec": spec}  # fmt: skip
            client.create(DownscalePolicy.from_dict(policy))

            def scaled() -> int:
                spec = client.get(Deployment, "echo", namespace=NS).spec
                return int(spec.replicas or 0) if spec else 0

            wait("scale to zero", lambda: scaled() == 0, 180)
            backend.terminate()
            backend.wait(5)
        ready = threading.Event()

        def kubelet_stand_in() -> None:  # the backend runs again once a replica is ready
            def is_ready() -> bool:
                status = client.get(Deployment, "echo", namespace=NS).status
                return bool(status and status.readyReplicas)

            wait("echo ready again", is_ready, 120)
            ready.set()

        with contextlib.ExitStack() as stack:
            thread = threading.Thread(target=kubelet_stand_in, daemon=True)
            started = time.perf_counter()
            thread.start()

            async def first() -> int:
                async with httpx2.AsyncClient(trust_env=False, timeout=120) as http:
                    task = asyncio.create_task(http.post(proxied, content=b"wake"))
                    await asyncio.to_thread(ready.wait, 120)
                    stack.enter_context(process(backend_cmd, work / "backend2.log"))
                    return (await task).status_code

            code = asyncio.run(first())
            took = round(time.perf_counter() - started, 3)
            report["wake"] = {"status": code, "first_held_to_response_s": took,
                              "replicas_after": scaled()}  # fmt: skip
    finally:
        stop_activator(state)
    return report


if __name__ == "__main__":
    main()
