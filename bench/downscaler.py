"""The downscaler at scale on the local backend (JSON).

For each size N (default 100, 1,000, 5,000 Deployments), spread over 10 namespaces with one
DownscalePolicy each (interval 10 s), on a fresh cluster:

- steady: every target Active (a 1 rps series each), nothing to do. Per interval (all
  policies): API requests of the operator's ServiceAccount (counted by the API server's
  flow control, the only client in the "service-accounts" flow schema), bytes its API
  client sent and received, Prometheus queries, CPU seconds of the operator process, RSS.
- scale down: every series drops to 0; once idleFor has passed, each policy's deciding
  cycle scales its targets to zero. Requests, requests per action, and the time from a
  cycle's decisions to its last write (the operator's actuation histogram: mean and the
  bucket bound of the slowest), plus the wall time from the first write to the last.
- restore: every series comes back; the wake query restores every target. Same figures.

Deployments are created paused, so no ReplicaSet or pod is made: the bench measures the
operator and the API server, not the controller-manager and KWOK (the writes the operator
makes are the same). Traffic stays on 127.0.0.1.
Run: .venv/bin/python bench/downscaler.py [--sizes 100,1000,5000] [--cycles 6]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx2
from lightkube import AsyncClient, KubeConfig
from lightkube.core.exceptions import ApiError
from lightkube.models.meta_v1 import ObjectMeta
from lightkube.resources.apps_v1 import Deployment
from lightkube.resources.core_v1 import Namespace

from gpuplane.backends.local.services import Services
from gpuplane.backends.local.state import LocalState
from gpuplane.downscaler.resource import DownscalePolicy
from gpuplane.kube import connect, get_raw
from platforms import kwok_platform
from proc import process_figures

REPO = Path(__file__).resolve().parents[1]
CLUSTER = "gpuplane-bench"
INTERVAL = "10s"
INTERVAL_SECONDS = 10.0
POLICIES = 10
REPLICAS = 2
RATE_WINDOW = "6s"  # three 2 s scrapes


def metric_sum(text: str, name: str, label_filter: str = "") -> float:
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name) and label_filter in line and not line.startswith("#"):
            total += float(line.rsplit(" ", 1)[1])
    return total


def grown(before: str, after: str, name: str, label_filter: str = "") -> float:
    """How much the metric ``name`` went up between two scrapes."""
    return metric_sum(after, name, label_filter) - metric_sum(before, name, label_filter)


def slowest_bucket(before: str, after: str, name: str) -> float | None:
    """The smallest histogram bound that holds every observation made in between."""
    pattern = re.compile(rf'^{name}_bucket\{{le="([^"]+)"\}} (\S+)$', re.MULTILINE)
    counts_before = {le: float(value) for le, value in pattern.findall(before)}
    bounds = [
        (le, float(value) - counts_before.get(le, 0.0)) for le, value in pattern.findall(after)
    ]
    total = next((count for le, count in bounds if le == "+Inf"), 0.0)
    if total == 0:
        return None
    return next(float(le) for le, count in bounds if count >= total)


def deployment_manifest(namespace: str, name: str) -> dict[str, Any]:
    labels = {"app.kubernetes.io/name": name, "app.kubernetes.io/part-of": "bench"}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": namespace, "labels": labels},
        "spec": {
            "replicas": REPLICAS,
            "paused": True,  # no ReplicaSet, no pod: see the module docstring
            "selector": {"matchLabels": {"app.kubernetes.io/name": name}},
            "template": {
                "metadata": {"labels": labels},
                "spec": {"containers": [{"name": "app", "image": "registry.k8s.io/pause:3.10"}]},
            },
        },
    }


def policy_manifest(namespace: str) -> Any:
    series = f'gateway_requests_total{{namespace="{namespace}"}}'
    rate = f"sum by (deployment) (rate({series}[{RATE_WINDOW}]))"
    return DownscalePolicy.from_dict(
        {
            "apiVersion": "gpuplane.io/v1alpha1",
            "kind": "DownscalePolicy",
            "metadata": {"name": "bench", "namespace": namespace},
            "spec": {
                "selector": {"matchLabels": {"app.kubernetes.io/part-of": "bench"}},
                "interval": INTERVAL,
                "idleFor": INTERVAL,
                "gracePeriod": "1s",
                "signals": [{"name": "requests", "query": rate, "idleBelow": 0.05}],
                "wake": {"query": rate, "above": 0.5},
            },
        }
    )


async def create_all(kubeconfig: Path, manifests: list[dict[str, Any]]) -> None:
    client = AsyncClient(config=KubeConfig.from_file(str(kubeconfig)), trust_env=False)
    gate = asyncio.Semaphore(16)

    async def create(manifest: dict[str, Any]) -> None:
        async with gate:
            await client.create(Deployment.from_dict(manifest))

    try:
        await asyncio.gather(*(create(manifest) for manifest in manifests))
    finally:
        await client.close()


class Bench:
    def __init__(self, state_root: Path) -> None:
        self.state = LocalState(state_root, CLUSTER)
        self.services = Services(self.state)
        self.client = connect(self.state.kubeconfig, timeout=120)
        ports = self.services.ports()
        assert ports is not None
        self.ports = ports
        self.http = httpx2.Client(trust_env=False, timeout=60)

    def operator(self) -> str:
        return self.http.get(f"http://127.0.0.1:{self.ports.downscaler_metrics}/metrics").text

    def api_requests(self) -> float:
        text = get_raw(self.state.kubeconfig, "/metrics", timeout=30)
        return metric_sum(
            text,
            "apiserver_flowcontrol_dispatched_requests_total",
            'flow_schema="service-accounts"',
        )

    def set_traffic(self, targets: list[tuple[str, str]], rps: float) -> None:
        rows = [{"namespace": ns, "deployment": name, "rps": rps} for ns, name in targets]
        answer = self.http.put(f"{self.ports.traffic_url}/traffic", content=json.dumps(rows))
        answer.raise_for_status()

    def operator_pid(self) -> int:
        pid = self.services.pid("downscaler")
        assert pid, "the downscaler is not running"
        return pid

    def wait_metric(self, name: str, label: str, target: float, timeout: float) -> float:
        """Seconds until the operator's counter reaches ``target``; polled every 0.2 s."""
        start = time.monotonic()
        while metric_sum(self.operator(), name, label) < target:
            if time.monotonic() - start > timeout:
                raise RuntimeError(f"{name}{label} never reached {target}")
            time.sleep(0.2)
        return time.monotonic() - start

    def watch_writes(
        self, name: str, baseline: float, target: float, timeout: float
    ) -> tuple[float, float]:
        """(seconds to the first write, seconds from the first write to the last)."""
        start = time.monotonic()
        first: float | None = None
        while True:
            done = metric_sum(self.operator(), name) - baseline
            now = time.monotonic()
            if done > 0 and first is None:
                first = now
            if done >= target:
                assert first is not None
                return first - start, now - first
            if now - start > timeout:
                raise RuntimeError(f"{name} reached {done} of {target}")
            time.sleep(0.2)

    def phase(self, counter: str, actions: int, trigger: Callable[[], None]) -> dict[str, Any]:
        """``trigger`` the actions, then wait until ``counter`` has grown by ``actions``."""
        before_metrics, before_api = self.operator(), self.api_requests()
        trigger()
        baseline = metric_sum(before_metrics, counter)
        to_first, spread = self.watch_writes(counter, baseline, actions, timeout=180)
        time.sleep(1.0)  # the status patch and Events follow the last write
        after_metrics, after_api = self.operator(), self.api_requests()
        count = grown(before_metrics, after_metrics, "gpuplane_downscaler_actuation_seconds_count")
        seconds = grown(before_metrics, after_metrics, "gpuplane_downscaler_actuation_seconds_sum")
        requests = after_api - before_api
        conflicts = grown(
            before_metrics, after_metrics, "gpuplane_downscaler_write_conflicts_total"
        )
        return {
            "actions": actions,
            "api_requests": int(requests),
            "api_requests_per_action": round(requests / actions, 3),
            "acting_cycles": int(count),
            "decisions_to_last_write_seconds_mean": round(seconds / count, 3) if count else None,
            "decisions_to_last_write_seconds_max_le": slowest_bucket(
                before_metrics, after_metrics, "gpuplane_downscaler_actuation_seconds"
            ),
            "first_to_last_write_seconds_all_policies": round(spread, 2),
            "seconds_to_first_write": round(to_first, 2),
            "write_conflicts": int(conflicts),
        }

    def steady(self, cycles: int) -> dict[str, Any]:
        pid = self.operator_pid()
        before_metrics, before_api = self.operator(), self.api_requests()
        before_cpu, _ = process_figures(pid)
        started = time.monotonic()
        time.sleep(cycles * INTERVAL_SECONDS)
        elapsed = time.monotonic() - started
        after_metrics, after_api = self.operator(), self.api_requests()
        after_cpu, rss = process_figures(pid)
        intervals = elapsed / INTERVAL_SECONDS

        def per_interval(name: str, label: str = "") -> float:
            return round(grown(before_metrics, after_metrics, name, label) / intervals, 2)

        evaluations = grown(
            before_metrics, after_metrics, "gpuplane_downscaler_evaluation_seconds_count"
        )
        return {
            "intervals": round(intervals, 1),
            "policy_evaluations": int(evaluations),
            "api_requests_per_interval": round((after_api - before_api) / intervals, 2),
            "client_requests_per_interval": per_interval("gpuplane_downscaler_kube_requests_total"),
            "bytes_sent_per_interval": per_interval(
                "gpuplane_downscaler_kube_bytes_total", 'direction="sent"'
            ),
            "bytes_received_per_interval": per_interval(
                "gpuplane_downscaler_kube_bytes_total", 'direction="received"'
            ),
            "prometheus_queries_per_interval": per_interval(
                "gpuplane_downscaler_prometheus_queries_total"
            ),
            "cpu_seconds_per_interval": round((after_cpu - before_cpu) / intervals, 3),
            "operator_rss_mb": round(rss, 1),
        }

    def run(self, size: int, cycles: int) -> dict[str, Any]:
        namespaces = [f"bench-{size}-{index}" for index in range(POLICIES)]
        targets = [
            (namespace, f"d-{index:05d}")
            for position, namespace in enumerate(namespaces)
            for index in range(position, size, POLICIES)
        ]
        for namespace in namespaces:
            self.client.create(Namespace(metadata=ObjectMeta(name=namespace)))
        created = time.monotonic()
        manifests = [deployment_manifest(namespace, name) for namespace, name in targets]
        asyncio.run(create_all(self.state.kubeconfig, manifests))
        creation = time.monotonic() - created
        settled = {"after_creation": round(self.settle(namespaces), 1)}
        self.set_traffic(targets, 1.0)
        time.sleep(8)  # a rate window of samples: every target reads Active
        for namespace in namespaces:
            self.client.create(policy_manifest(namespace))
        self.wait_metric(
            "gpuplane_downscaler_targets", 'verdict="Active"', size, timeout=120 + size / 50
        )
        time.sleep(2 * INTERVAL_SECONDS)  # past the first status writes
        steady = self.steady(cycles)

        down = self.phase(
            "gpuplane_downscaler_scale_downs_total", size, lambda: self.set_traffic(targets, 0.0)
        )
        settled["after_scale_down"] = round(self.settle(namespaces), 1)
        # Traffic back: the wake query (or the signal turning Active first) restores each.
        up = self.phase(
            "gpuplane_downscaler_restores_total", size, lambda: self.set_traffic(targets, 1.0)
        )
        _, rss = process_figures(self.operator_pid())
        lost = self.count_lost(namespaces)
        self.clean(namespaces)
        return {
            "deployments": size,
            "policies": POLICIES,
            "interval_seconds": INTERVAL_SECONDS,
            "creation_seconds": round(creation, 1),
            "controller_settle_seconds": settled,
            "steady": steady,
            "scale_down": down,
            "restore_by_traffic": up,
            "operator_rss_mb_after": round(rss, 1),
            "lost_counts": lost,
        }

    def settle(self, namespaces: list[str], timeout: float = 1800) -> float:
        """Wait until the deployment controller has caught up with every Deployment
        (observedGeneration == generation): its status writes would otherwise land in
        the measurement (as Deployment events and write conflicts)."""
        start = time.monotonic()
        while time.monotonic() - start < timeout:
            behind = sum(
                1
                for namespace in namespaces
                for item in self.client.list(Deployment, namespace=namespace)
                if item.metadata is None
                or item.status is None
                or item.status.observedGeneration != item.metadata.generation
            )
            if behind == 0:
                return time.monotonic() - start
            time.sleep(2)
        raise RuntimeError(f"the deployment controller did not catch up in {timeout:.0f}s")

    def count_lost(self, namespaces: list[str]) -> int:
        """Deployments not back at their original count, or still carrying a ledger."""
        lost = 0
        for namespace in namespaces:
            for item in self.client.list(Deployment, namespace=namespace):
                annotations = (item.metadata.annotations if item.metadata else None) or {}
                replicas = item.spec.replicas if item.spec else None
                if replicas != REPLICAS or "gpuplane.io/original-replicas" in annotations:
                    lost += 1
        return lost

    def clean(self, namespaces: list[str]) -> None:
        for namespace in namespaces:
            self.client.delete(DownscalePolicy, "bench", namespace=namespace)
        for namespace in namespaces:
            self.client.delete(Namespace, namespace)
        deadline = time.monotonic() + 600
        for namespace in namespaces:
            while time.monotonic() < deadline:
                try:
                    self.client.get(Namespace, namespace)
                except ApiError:
                    break
                time.sleep(1)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="100,1000,5000")
    parser.add_argument("--cycles", type=int, default=6, help="steady intervals measured")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="gpuplane-bench-") as scratch:
        platform = kwok_platform(Path(scratch) / "platform.yaml", CLUSTER)
        env = {**os.environ, "GPUPLANE_STATE": scratch}
        cli = [sys.executable, "-m", "gpuplane.cli.main", "-f", str(platform)]
        subprocess.run([*cli, "up"], env=env, check=True, capture_output=True)
        try:
            bench = Bench(Path(scratch))
            sizes = [bench.run(int(size), args.cycles) for size in args.sizes.split(",")]
        finally:
            subprocess.run([*cli, "down"], env=env, check=True, capture_output=True)
    print(
        json.dumps(
            {
                "benchmark": "downscaler on the local backend: N Deployments, 10 policies",
                "sizes": sizes,
                "goals_at_1000": {
                    "steady_api_requests_per_interval_max": 4,
                    "steady_cpu_seconds_per_interval_max": 0.13,
                    "scale_down_api_requests_max": 1200,
                    "scale_down_decisions_to_last_write_seconds_max": 6,
                    "restore_api_requests_max": 1200,
                    "restore_decisions_to_last_write_seconds_max": 6,
                    "operator_rss_mb_max": 100,
                    "operator_rss_mb_max_at_5000": 200,
                },
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
