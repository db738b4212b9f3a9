"""The downscaler at scale on the sim backend (JSON).

For N in (100, 1000, 5000) Deployments under one policy: seconds per evaluation cycle,
kube-apiserver requests per cycle made by the operator (its ServiceAccount is the only
client in the "service-accounts" flow schema, counted by the API server itself),
Prometheus queries per cycle, operator RSS. Then the reaction times on one Deployment:
idle -> scaled down (target <= idleFor + interval) and wake -> restored (target <=
scrape interval + interval).
Run: .venv/bin/python bench/downscaler.py [--sizes 100,1000,5000] [--cycles 10]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, cast

import httpx2
from lightkube.models.meta_v1 import ObjectMeta
from lightkube.resources.apps_v1 import Deployment
from lightkube.resources.core_v1 import Namespace

from gpuplane.backends.local.services import Services
from gpuplane.backends.local.state import LocalState
from gpuplane.downscaler.resource import DownscalePolicy
from gpuplane.kube import connect, get_raw

REPO = Path(__file__).resolve().parents[1]
CLUSTER = "gpuplane-bench"
INTERVAL_SECONDS = 2


def metric_sum(text: str, name: str, label_filter: str = "") -> float:
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name) and label_filter in line and not line.startswith("#"):
            total += float(line.rsplit(" ", 1)[1])
    return total


def rss_mb(pid: int) -> float:
    status = Path(f"/proc/{pid}/status").read_text()
    match = re.search(r"VmRSS:\s+(\d+) kB", status)
    return int(match.group(1)) / 1024 if match else 0.0


def deployment(namespace: str, name: str, replicas: int) -> Deployment:
    labels = {"app.kubernetes.io/name": name, "app.kubernetes.io/part-of": "bench"}
    return cast(
        Deployment,
        Deployment.from_dict(
            {
                "apiVersion": "apps/v1",
                "kind": "Deployment",
                "metadata": {"name": name, "namespace": namespace, "labels": labels},
                "spec": {
                    "replicas": replicas,
                    "selector": {"matchLabels": {"app.kubernetes.io/name": name}},
                    "template": {
                        "metadata": {"labels": labels},
                        "spec": {
                            "containers": [{"name": "app", "image": "registry.k8s.io/pause:3.10"}]
                        },
                    },
                },
            }
        ),
    )


def policy(namespace: str, query_metric: str, idle_for: str = "4s") -> Any:
    rate = f'sum by (deployment) (rate({query_metric}{{namespace="{namespace}"}}[6s]))'
    wake = f'sum by (deployment) (rate(gateway_requests_total{{namespace="{namespace}"}}[6s]))'
    return DownscalePolicy.from_dict(
        {
            "apiVersion": "gpuplane.io/v1alpha1",
            "kind": "DownscalePolicy",
            "metadata": {"name": "bench", "namespace": namespace},
            "spec": {
                "selector": {"matchLabels": {"app.kubernetes.io/part-of": "bench"}},
                "interval": f"{INTERVAL_SECONDS}s",
                "idleFor": idle_for,
                "gracePeriod": "1s",
                "signals": [{"name": "requests", "query": rate, "idleBelow": 0.05}],
                "wake": {"query": wake, "above": 0.05},
            },
        }
    )


class Bench:
    def __init__(self, state_root: Path) -> None:
        self.state = LocalState(state_root, CLUSTER)
        self.services = Services(self.state)
        self.client = connect(self.state.kubeconfig, timeout=120)
        ports = self.services.ports()
        assert ports is not None
        self.ports = ports
        self.http = httpx2.Client(trust_env=False, timeout=30)

    def operator_metrics(self) -> str:
        return self.http.get(f"http://127.0.0.1:{self.ports.downscaler_metrics}/metrics").text

    def operator_api_requests(self) -> float:
        text = get_raw(self.state.kubeconfig, "/metrics", timeout=30)
        return metric_sum(
            text,
            "apiserver_flowcontrol_dispatched_requests_total",
            'flow_schema="service-accounts"',
        )

    def set_traffic(self, namespace: str, name: str, rps: float) -> None:
        self.http.put(
            f"{self.ports.traffic_url}/traffic/{namespace}/{name}", content=json.dumps({"rps": rps})
        )

    def scale(self, size: int, cycles: int) -> dict[str, Any]:
        namespace = f"bench-{size}"
        self.client.create(Namespace(metadata=ObjectMeta(name=namespace)))
        names = [f"d-{index:05d}" for index in range(size)]
        # Sequential on purpose: one client shared by threads crashed the interpreter.
        for name in names:
            self.client.create(deployment(namespace, name, 0))
            self.set_traffic(namespace, name, 1.0)
        time.sleep(5)  # two scrapes: every target has a gateway series
        # The gateway series exist for every target (replicas 0: the app's own do not):
        # all Active, nothing to do -- the steady state whose cost must not grow with N.
        self.client.create(policy(namespace, "gateway_requests_total"))
        time.sleep(4 * INTERVAL_SECONDS)  # first cycles write the full status
        before_metrics, before_api = self.operator_metrics(), self.operator_api_requests()
        started = time.monotonic()
        time.sleep(cycles * INTERVAL_SECONDS)
        elapsed = time.monotonic() - started
        after_metrics, after_api = self.operator_metrics(), self.operator_api_requests()
        count = metric_sum(
            after_metrics, "gpuplane_downscaler_evaluation_seconds_count"
        ) - metric_sum(before_metrics, "gpuplane_downscaler_evaluation_seconds_count")
        seconds = metric_sum(
            after_metrics, "gpuplane_downscaler_evaluation_seconds_sum"
        ) - metric_sum(before_metrics, "gpuplane_downscaler_evaluation_seconds_sum")
        queries = metric_sum(
            after_metrics, "gpuplane_downscaler_prometheus_queries_total"
        ) - metric_sum(before_metrics, "gpuplane_downscaler_prometheus_queries_total")
        pid = self.services.pid("downscaler") or 0
        result = {
            "deployments": size,
            "cycles": int(count),
            "window_seconds": round(elapsed, 1),
            "seconds_per_cycle": round(seconds / count, 4) if count else None,
            "api_requests_per_cycle": round((after_api - before_api) / count, 2) if count else None,
            "prometheus_queries_per_cycle": round(queries / count, 2) if count else None,
            "operator_rss_mb": round(rss_mb(pid), 1) if pid else None,
        }
        self.client.delete(DownscalePolicy, "bench", namespace=namespace)
        time.sleep(2 * INTERVAL_SECONDS)
        self.client.delete(Namespace, namespace)
        return result

    def reaction(self) -> dict[str, Any]:
        namespace = "bench-reaction"
        self.client.create(Namespace(metadata=ObjectMeta(name=namespace)))
        self.client.create(deployment(namespace, "llm", 2))
        self.set_traffic(namespace, "llm", 5.0)
        self.client.create(policy(namespace, "http_requests_total", idle_for="6s"))
        time.sleep(10)

        def replicas() -> int:
            spec = self.client.get(Deployment, "llm", namespace=namespace).spec
            return int(spec.replicas or 0) if spec else 0

        def wait(value: int) -> float:
            start = time.monotonic()
            while replicas() != value:
                time.sleep(0.1)
                if time.monotonic() - start > 120:
                    raise RuntimeError(f"replicas never reached {value}")
            return time.monotonic() - start

        self.set_traffic(namespace, "llm", 0.0)
        traffic_stopped = time.monotonic()
        wait(0)
        down_total = time.monotonic() - traffic_stopped
        action = None
        while action is None:  # the status patch follows the scale within the cycle
            live = self.client.get(DownscalePolicy, "bench", namespace=namespace).to_dict()
            action = live["status"]["targets"][0].get("lastAction")
            time.sleep(0.1)
        self.set_traffic(namespace, "llm", 5.0)
        restore = wait(2)
        self.client.delete(Namespace, namespace)
        return {
            "traffic_stop_to_scaled_down_seconds": round(down_total, 2),
            "note": "includes the 6s rate window draining before the signal reads idle",
            "idle_for_seconds": 6,
            "interval_seconds": INTERVAL_SECONDS,
            "scale_down_action": action,
            "wake_to_restored_seconds": round(restore, 2),
            "scrape_interval_seconds": 2,
        }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="100,1000,5000")
    parser.add_argument("--cycles", type=int, default=10)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="gpuplane-bench-") as scratch:
        platform = REPO / "bench" / "platform-bench.yaml"
        document = (
            (REPO / "platform.yaml").read_text().replace("name: gpuplane", f"name: {CLUSTER}")
        )
        platform.write_text(document)
        env = {**os.environ, "GPUPLANE_STATE": scratch}
        cli = [sys.executable, "-m", "gpuplane.cli.main", "-f", str(platform)]
        subprocess.run([*cli, "up"], env=env, check=True, capture_output=True)
        try:
            bench = Bench(Path(scratch))
            # Reaction first, on a quiet cluster; then the sizes, smallest first.
            reaction = bench.reaction()
            scales = [bench.scale(int(size), args.cycles) for size in args.sizes.split(",")]
        finally:
            subprocess.run([*cli, "down"], env=env, check=True, capture_output=True)
            platform.unlink()
    print(
        json.dumps(
            {
                "benchmark": "downscaler on the sim backend, one policy, one signal + wake",
                "scale": scales,
                "reaction": reaction,
                "targets": {
                    "api_requests_per_steady_cycle": "constant in N",
                    "prometheus_queries_per_cycle": 2,
                    "seconds_per_cycle_at_1000_max": 1.0,
                    "operator_rss_mb_at_1000_max": 150,
                },
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
