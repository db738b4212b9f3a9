"""The HPA with real replicas: the CPU embeddings service on a kubelet app node, a load
step with and without autoscaling (JSON). Needs root (a kubelet node on this host).

A scratch platform whose app node is a real kubelet node; `gpuplane image load`, the
shipped `apps/inference` CPU Deployment and Service, `gpuplane autoscale up`, and the
activator on 127.0.0.1 in front of the ready pods (round robin). Twice, from one
replica: `--base` clients for 30 s, then `--step` clients for `--window` seconds.

- without: no HPA; the one replica takes the step;
- with: `apps/autoscaling/inference-cpu.yaml` applied (1..4 replicas, 4 in flight each):
  seconds from the step to the first added replica Ready (a real pod: scheduled,
  container started, model loaded, warm), and the client's p50/p99 over the step's
  window and over its last half (when the added replicas serve).

Every pod shares this host's cores with the load generator and the control plane: the
figures say what autoscaling buys on this machine, not on a cluster of separate nodes.
Traffic stays on 127.0.0.1. Run: sudo .venv/bin/python bench/autoscale_real.py
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml
from lightkube import Client
from lightkube.resources.apps_v1 import Deployment
from lightkube.resources.autoscaling_v2 import HorizontalPodAutoscaler

from autoscale import Load, until
from gpuplane.backends.local.activator_service import start_activator, stop_activator
from gpuplane.backends.local.state import LocalState
from gpuplane.kube import connect
from gpuplane.kube.apply import apply_files
from platforms import kwok_platform
from scratch import REPO

NAMESPACE, NAME = "ml", "inference-cpu"
ROUTE = {
    "name": "embeddings", "namespace": NAMESPACE, "deployment": NAME, "service": "inference",
    "upstream": "endpoints:8000", "match": {"pathPrefix": "/bench"}, "stripPrefix": True,
}  # fmt: skip


def kubelet_platform(target: Path) -> Path:
    kwok_platform(target)
    document = yaml.safe_load(target.read_text())
    for node in document["spec"]["nodes"]:
        if node["name"] == "agent-0":
            node["runtime"] = "kubelet"
    target.write_text(yaml.safe_dump(document, sort_keys=False))
    return target


def ready(client: Client) -> int:
    live = client.get(Deployment, NAME, namespace=NAMESPACE)
    return int((live.status.readyReplicas if live.status else 0) or 0)


def step(load: Load, client: Client, args: argparse.Namespace, *, hpa: bool) -> dict[str, Any]:
    window = args.window
    load.resize(args.base)
    time.sleep(30)
    load.resize(args.step)
    started = time.monotonic()
    first_ready = None
    while time.monotonic() - started < window:
        if hpa and first_ready is None and ready(client) > 1:
            first_ready = round(time.monotonic() - started, 2)
        time.sleep(0.5)
    end = time.monotonic()
    load.resize(0)
    return {
        "clients": args.step,
        "window_s": window,
        "seconds_to_added_replica_ready": first_ready,
        "replicas_ready_at_end": ready(client),
        "whole_window": load.percentiles(started, end),
        "last_half": load.percentiles(started + window / 2, end),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", type=int, default=2)
    parser.add_argument("--step", type=int, default=12)
    parser.add_argument("--window", type=float, default=180.0)
    args = parser.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("bench/autoscale_real.py: a kubelet node needs root")
    result: dict[str, Any] = {"bench": "autoscale_real", "replicas": "real (kubelet node)"}
    with tempfile.TemporaryDirectory(prefix="gpuplane-bench-") as directory:
        platform = kubelet_platform(Path(directory) / "platform.yaml")
        gpuplane = [sys.executable, "-m", "gpuplane.cli.main", "-f", str(platform)]
        env = {**os.environ, "GPUPLANE_STATE": directory}

        def cli(*words: str) -> None:
            done = subprocess.run(
                [*gpuplane, *words], env=env, capture_output=True, text=True, check=False
            )
            if done.returncode != 0:
                raise SystemExit(f"gpuplane {' '.join(words)}: {done.stderr[-2000:]}")

        cli("up")
        try:
            cli("image", "load")
            cli("autoscale", "up")
            state = LocalState(Path(directory), "gpuplane")
            client = connect(state.kubeconfig)
            inference = REPO / "apps" / "inference"
            apply_files(client, [inference / "namespace.yaml", inference / "server-cpu.yaml"])
            apply_files(client, [inference / "service.yaml"])
            until(lambda: ready(client) == 1, 300, "the first replica Ready")
            address = start_activator(state, client, [ROUTE], {})
            load = Load(f"{address.url}/bench/v1/embeddings")
            result["without_autoscaling"] = step(load, client, args, hpa=False)
            apply_files(client, [REPO / "apps" / "autoscaling" / "inference-cpu.yaml"])
            result["with_autoscaling"] = step(load, client, args, hpa=True)
            client.delete(HorizontalPodAutoscaler, NAME, namespace=NAMESPACE)
            result["lost"] = load.failures
            result["answered"] = len(load.latencies)
            stop_activator(state)
        finally:
            cli("down")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
