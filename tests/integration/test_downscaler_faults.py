"""Fault tests of the downscaler on the real sim cluster.

Covers: a policy's own Prometheus stopped -> MetricsAvailable=False and no scale-down,
then (Restore) its ScaledDown target comes back after onMetricsLoss.after, or (Hold)
nothing moves; the operator SIGKILLed at random points across >= 30 scale cycles and
restarted each time -> no original count lost, every restore exact.
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx2
import pytest
import yaml

from gpuplane.backends.local.services import free_port
from tests.integration.conftest import SimCluster
from tests.integration.downscaler_kit import (
    condition,
    deployment,
    ledger,
    policy,
    replicas,
    services,
    set_traffic,
    target_status,
    wait_for,
)

pytestmark = pytest.mark.integration
CLUSTER = "gpuplane-it"


class OwnPrometheus:
    """A second real Prometheus scraping the session's traffic simulator."""

    def __init__(self, directory: Path, traffic_port: int) -> None:
        binary = shutil.which("prometheus")
        assert binary, "Debian's prometheus package is a prerequisite (make prerequisites)"
        self.port = free_port()
        config = directory / "prometheus.yml"
        config.write_text(
            yaml.safe_dump(
                {
                    "global": {"scrape_interval": "2s"},
                    "scrape_configs": [
                        {
                            "job_name": "traffic",
                            "static_configs": [{"targets": [f"127.0.0.1:{traffic_port}"]}],
                        }
                    ],
                }
            )
        )
        self.process = subprocess.Popen(
            [
                binary,
                f"--config.file={config}",
                f"--storage.tsdb.path={directory / 'data'}",
                f"--web.listen-address=127.0.0.1:{self.port}",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        with httpx2.Client(trust_env=False, timeout=2) as http:

            def ready() -> bool:
                try:
                    return http.get(f"{self.url}/-/ready").status_code == 200
                except httpx2.HTTPError:
                    return False

            wait_for("own Prometheus ready", ready, timeout=30)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            self.process.wait(timeout=30)


@pytest.fixture
def own_prometheus(sim_cluster: SimCluster, tmp_path: Path) -> Iterator[OwnPrometheus]:
    ports = services(sim_cluster.env, CLUSTER).ports()
    assert ports is not None
    prometheus = OwnPrometheus(tmp_path, ports.traffic)
    yield prometheus
    prometheus.stop()


@pytest.mark.parametrize("action", ["Restore", "Hold"])
def test_prometheus_stopped(
    sim_cluster: SimCluster, ns: str, own_prometheus: OwnPrometheus, action: str
) -> None:
    client = sim_cluster.client
    client.create(deployment(ns, "llm", 3))
    set_traffic(sim_cluster.env, CLUSTER, ns, "llm", 0)
    client.create(
        policy(
            ns,
            prometheus={"url": own_prometheus.url},
            onMetricsLoss={"action": action, "after": "8s"},
        )
    )
    wait_for(
        "scale to zero",
        lambda: replicas(client, ns, "llm") == 0 and ledger(client, ns, "llm") == "3",
        timeout=60,
    )

    own_prometheus.stop()
    lost = wait_for(
        "MetricsAvailable=False",
        lambda: (c := condition(client, ns, "MetricsAvailable")).get("status") == "False" and c,
    )
    assert lost["reason"] == "PrometheusUnreachable"
    # A fresh, idle Deployment appears while blind: it must not be scaled down.
    client.create(deployment(ns, "newcomer", 2))
    time.sleep(4)
    assert replicas(client, ns, "llm") == 0, "nothing may move before onMetricsLoss.after"
    if action == "Restore":
        wait_for("blind restore", lambda: replicas(client, ns, "llm") == 3, timeout=30)
        wait_for(  # the status follows the scale within the same cycle
            "the restore's reason",
            lambda: (
                "metrics lost"
                in target_status(client, ns, "llm").get("lastAction", {}).get("reason", "")
            ),
            timeout=10,
        )
        wait_for("ledger cleared", lambda: ledger(client, ns, "llm") is None)
    else:
        time.sleep(10)
        assert replicas(client, ns, "llm") == 0
        assert ledger(client, ns, "llm") == "3"
    assert replicas(client, ns, "newcomer") == 2
    assert target_status(client, ns, "newcomer")["verdict"] == "Unknown"


def test_operator_killed_at_random_points_loses_nothing(sim_cluster: SimCluster, ns: str) -> None:
    """Six Deployments, five idle/wake rounds each (30 scale cycles), SIGKILL all along."""
    client = sim_cluster.client
    supervisor = services(sim_cluster.env, CLUSTER)
    rng = random.Random(20261126)  # noqa: S311 - a reproducible schedule, not a secret
    originals = {f"svc-{index}": rng.randint(1, 5) for index in range(6)}
    for name, count in originals.items():
        client.create(deployment(ns, name, count))
        set_traffic(sim_cluster.env, CLUSTER, ns, name, 0)
    client.create(policy(ns, idleFor="3s"))

    stop = threading.Event()
    kills: list[float] = []
    wrong: list[str] = []

    def killer() -> None:
        while not stop.is_set():
            time.sleep(rng.uniform(0.5, 4.0))
            pid = supervisor.pid("downscaler")
            if pid and supervisor.running("downscaler"):
                os.kill(pid, signal.SIGKILL)
                kills.append(time.monotonic())
            time.sleep(rng.uniform(0.2, 1.5))
            supervisor.start(
                sim_cluster.kubeconfig, sim_cluster.kubeconfig.parent / "downscaler.kubeconfig"
            )

    def watch_counts() -> None:
        while not stop.is_set():
            for name, count in originals.items():
                seen = replicas(client, ns, name)
                if seen not in (0, count):
                    wrong.append(f"{name}: {seen} replicas, original {count}")
                recorded = ledger(client, ns, name)
                if recorded is not None and recorded != str(count):
                    wrong.append(f"{name}: ledger {recorded}, original {count}")
            time.sleep(0.2)

    threads = [threading.Thread(target=killer), threading.Thread(target=watch_counts)]
    for thread in threads:
        thread.start()
    cycles = 0
    try:
        for _ in range(5):
            for name in originals:
                set_traffic(sim_cluster.env, CLUSTER, ns, name, 0)
            for name in originals:
                wait_for(
                    f"{name} scaled down", lambda n=name: replicas(client, ns, n) == 0, timeout=120
                )
            for name in originals:
                set_traffic(sim_cluster.env, CLUSTER, ns, name, 4)
            for name, count in originals.items():
                wait_for(
                    f"{name} restored",
                    lambda n=name, c=count: replicas(client, ns, n) == c,
                    timeout=120,
                )
                cycles += 1
    finally:
        stop.set()
        for thread in threads:
            thread.join()
        supervisor.start(
            sim_cluster.kubeconfig, sim_cluster.kubeconfig.parent / "downscaler.kubeconfig"
        )
    assert cycles == 30
    assert len(kills) >= 10, f"only {len(kills)} kills"
    assert wrong == []
    for name, count in originals.items():
        assert replicas(client, ns, name) == count
        wait_for(f"{name} ledger cleared", lambda n=name: ledger(client, ns, n) is None, timeout=30)
