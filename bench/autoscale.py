"""The HPA scaling the embeddings service on its in-flight requests (JSON).

On a scratch platform (every node KWOK) with `gpuplane autoscale up`: the shipped
`apps/inference/server-cpu.yaml` Deployment and `apps/autoscaling/inference-cpu.yaml`
HPA, and the real inference service (numpy, CPU) on 127.0.0.1 labelled as that
Deployment, scraped by the cluster's Prometheus. The replicas the HPA adds are KWOK pods:
scheduled and Ready, never executed; the scaling decisions, the metrics path (service →
Prometheus → adapter → API server → HPA controller) and their timing are real.

- step: a baseline load (`--base` clients, each with one request in flight at all times)
  then a step to `--step` clients: seconds from the step to the HPA's first scale-out and
  to the added replica Ready, and to the final count; the client's p50/p99 before and
  during the step (the service is one process whatever the replica count, so latency with
  and without autoscaling is the same here: that comparison needs real replicas);
- steady: constant load for `--steady` seconds (default 600): every change of
  spec.replicas after the first settle counts as a flap (goal 0);
- scale-in: load stopped, seconds until the HPA is back at 1;
- lost: requests that did not answer 200, over the whole run (goal 0).

Traffic stays on 127.0.0.1. Run: .venv/bin/python bench/autoscale.py [--steady 600]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx2
from lightkube import Client
from lightkube.resources.apps_v1 import Deployment

from gpuplane.backends.local.services import Services, free_port
from gpuplane.backends.local.state import LocalState
from gpuplane.kube import connect
from gpuplane.kube.apply import apply_files
from scratch import REPO, scratch_platform

NAMESPACE, NAME = "ml", "inference-cpu"
TEXTS = ["a request for the embeddings service, a few words long"] * 4


class Load:
    """``clients`` threads, each keeping one request in flight; latencies and failures."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.latencies: list[tuple[float, float]] = []  # (when, seconds)
        self.failures = 0
        self._threads: list[tuple[threading.Thread, threading.Event]] = []
        self._lock = threading.Lock()

    def resize(self, clients: int) -> None:
        while len(self._threads) < clients:
            stop = threading.Event()
            thread = threading.Thread(target=self._client, args=(stop,), daemon=True)
            thread.start()
            self._threads.append((thread, stop))
        while len(self._threads) > clients:
            thread, stop = self._threads.pop()
            stop.set()
            thread.join(timeout=120)

    def _client(self, stop: threading.Event) -> None:
        with httpx2.Client(timeout=120, trust_env=False) as http:
            while not stop.is_set():
                started = time.monotonic()
                try:
                    ok = http.post(self.url, json={"model": "all-MiniLM-L6-v2", "input": TEXTS})
                    good = ok.status_code == 200
                except httpx2.HTTPError:
                    good = False
                with self._lock:
                    if good:
                        self.latencies.append((started, time.monotonic() - started))
                    else:
                        self.failures += 1

    def percentiles(self, since: float, until: float) -> dict[str, float]:
        with self._lock:
            window = sorted(s for when, s in self.latencies if since <= when < until)
        if not window:
            return {}
        return {
            "requests": len(window),
            "p50_ms": round(statistics.median(window) * 1000, 1),
            "p99_ms": round(window[min(len(window) - 1, int(len(window) * 0.99))] * 1000, 1),
        }


def counts(client: Client) -> tuple[int, int]:
    live = client.get(Deployment, NAME, namespace=NAMESPACE)
    wanted = int(live.spec.replicas if live.spec and live.spec.replicas is not None else 1)
    ready = int((live.status.readyReplicas if live.status else 0) or 0)
    return wanted, ready


def until(check: Callable[[], bool], timeout: float, what: str) -> float:
    started = time.monotonic()
    while not check():
        if time.monotonic() - started > timeout:
            raise SystemExit(f"bench/autoscale.py: {what} not after {timeout:.0f} s")
        time.sleep(0.2)
    return round(time.monotonic() - started, 2)


@contextlib.contextmanager
def inference_service(log: Path) -> Iterator[str]:
    port = free_port()
    command = [
        sys.executable, "-m", "gpuplane.inference.main", "--host", "127.0.0.1",
        "--port", str(port), "--device", "cpu", f"--namespace={NAMESPACE}",
        f"--deployment={NAME}", "--max-batch-size=32",
    ]  # fmt: skip
    with log.open("wb") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        until(lambda: _ready(url), 120, "the inference service ready")
        yield url
    finally:
        process.terminate()
        process.wait(timeout=30)


def _ready(url: str) -> bool:
    with contextlib.suppress(httpx2.HTTPError):
        return httpx2.get(f"{url}/readyz", timeout=2, trust_env=False).status_code == 200
    return False


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", type=int, default=2, help="clients before the step")
    parser.add_argument("--step", type=int, default=14, help="clients after the step")
    parser.add_argument("--steady", type=float, default=600.0, help="seconds of constant load")
    args = parser.parse_args()
    result: dict[str, Any] = {"bench": "autoscale", "replicas": "KWOK (simulated)"}
    with scratch_platform() as scratch:
        setup = subprocess.run(
            [*scratch.gpuplane, "autoscale", "up"],
            env=scratch.env,
            capture_output=True,
            text=True,
            check=False,
        )
        if setup.returncode != 0:
            raise SystemExit(f"gpuplane autoscale up failed: {setup.stderr}")
        state = LocalState(scratch.directory, "gpuplane")
        client = connect(state.kubeconfig)
        apply_files(
            client,
            [
                REPO / "apps/inference/namespace.yaml",
                REPO / "apps/inference/server-cpu.yaml",
                REPO / "apps/autoscaling/inference-cpu.yaml",
            ],
        )
        with inference_service(scratch.directory / "inference.log") as url:
            Services(state).add_scrape_target("bench-inference", url.removeprefix("http://"), {})
            load = Load(f"{url}/v1/embeddings")
            load.resize(args.base)
            time.sleep(45)  # the adapter lists the new series; the HPA reads the baseline
            baseline_end = time.monotonic()
            result["baseline"] = {
                "clients": args.base,
                "replicas": counts(client)[0],
                **load.percentiles(baseline_end - 30, baseline_end),
            }
            load.resize(args.step)
            step = time.monotonic()
            first_out = until(lambda: counts(client)[0] > 1, 120, "a scale-out")
            added_ready = until(lambda: counts(client)[1] > 1, 120, "an added replica Ready")
            settled = until(lambda: counts(client)[0] == 4, 180, "4 replicas")
            result["step"] = {
                "clients": args.step,
                "seconds_to_first_scale_out": first_out,
                "seconds_to_added_replica_ready": round(first_out + added_ready, 2),
                "seconds_to_4_replicas": round(first_out + added_ready + settled, 2),
                **load.percentiles(step, time.monotonic()),
            }
            changes, last, samples = 0, counts(client)[0], []
            steady_until = time.monotonic() + args.steady
            while time.monotonic() < steady_until:
                now = counts(client)[0]
                samples.append(now)
                if now != last:
                    changes += 1
                    last = now
                time.sleep(1.0)
            result["steady"] = {
                "clients": args.step,
                "seconds": args.steady,
                "replica_changes": changes,
                "replicas_min": min(samples),
                "replicas_max": max(samples),
            }
            load.resize(0)
            result["scale_in_seconds_to_1"] = until(
                lambda: counts(client)[0] == 1, 600, "back to 1 replica"
            )
            result["lost"] = load.failures
            result["answered"] = len(load.latencies)
            Services(state).remove_scrape_target("bench-inference")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
