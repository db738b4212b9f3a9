"""The downscaler against the real inference service's metrics: Prometheus scrapes the
service (a real process on this CPU, standing for the pod of a KWOK Deployment), the
policy's request signal sums its ``http_requests_total`` by deployment; real requests keep
the Deployment up, their absence scales it to zero with its ledger, and a wake brings back
exactly that count. (The wake still comes from the gateway series: the activator, which
holds requests while at zero, is its own issue.)"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import httpx2

from tests.integration.conftest import SimCluster
from tests.integration.downscaler_kit import (
    deployment,
    ledger,
    policy,
    replicas,
    scaled_down,
    services,
    set_traffic,
    target_status,
    wait_for,
)
from tests.integration.inference_kit import MODEL, running_service

CLUSTER = "gpuplane-it"


def test_real_requests_keep_it_up_and_their_absence_scales_it_down(
    sim_cluster: SimCluster, ns: str, tmp_path: Path
) -> None:
    client = sim_cluster.client
    client.create(deployment(ns, "embeddings", 2))
    registry = services(sim_cluster.env, CLUSTER)
    flags = ("--namespace", ns, "--deployment", "embeddings")
    with running_service(tmp_path / "service.log", *flags) as service:
        port = service.url.rsplit(":", 1)[1]
        registry.add_scrape_target(f"{ns}-embeddings", f"127.0.0.1:{port}", {})
        stop = threading.Event()

        def traffic() -> None:  # about 5 requests/s, each a real embedding
            with httpx2.Client(trust_env=False, timeout=30) as http:
                while not stop.wait(0.2):
                    http.post(f"{service.url}/v1/embeddings", json={"model": MODEL, "input": "hi"})

        sender = threading.Thread(target=traffic, daemon=True)
        sender.start()
        try:
            client.create(policy(ns))
            wait_for(
                "Active from the real service's requests",
                lambda: target_status(client, ns, "embeddings").get("verdict") == "Active",
                timeout=60,
            )
            time.sleep(8)  # twice idleFor: still serving, so still up
            assert replicas(client, ns, "embeddings") == 2
        finally:
            stop.set()
            sender.join(10)
        wait_for("scale to zero", lambda: scaled_down(client, ns, "embeddings"), timeout=60)
        assert ledger(client, ns, "embeddings") == "2"
        reason = target_status(client, ns, "embeddings")["lastAction"]["reason"]
        assert "requests=0 < 0.05" in reason, reason
    # The pod is gone (as the kubelet would stop it): no target, no series.
    registry.remove_scrape_target(f"{ns}-embeddings")
    set_traffic(sim_cluster.env, CLUSTER, ns, "embeddings", 3)
    wait_for("wake", lambda: replicas(client, ns, "embeddings") == 2, timeout=30)
    set_traffic(sim_cluster.env, CLUSTER, ns, "embeddings", 0)
    assert ledger(client, ns, "embeddings") is None
