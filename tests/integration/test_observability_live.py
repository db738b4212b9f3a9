"""Dashboards and the PNG report against a running sim platform with traffic: a GPU
Deployment busy, idle, scaled to zero, woken and ready again; then every dashboard query
answers with data, and ``gpuplane report`` draws a valid PNG from the same Prometheus."""

from __future__ import annotations

import json
import struct
import threading
import zlib
from collections.abc import Iterator
from pathlib import Path

import httpx2
import pytest

from gpuplane.observability.promql import finite_samples, instant_query
from tests.integration.conftest import SimCluster
from tests.integration.downscaler_kit import (
    deployment,
    gpu_signal,
    policy,
    replicas,
    services,
    set_traffic,
    wait_for,
)
from tests.integration.inference_kit import MODEL, Service, running_service

CLUSTER = "gpuplane-it"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture
def embeddings(sim_cluster: SimCluster, ns: str, tmp_path: Path) -> Iterator[Service]:
    """The real inference service (CPU) as a workload Prometheus scrapes, under steady
    light traffic (a request every 0.2 s) while the test runs."""
    with running_service(
        tmp_path / "embeddings.log", "--namespace", ns, "--deployment", "embeddings"
    ) as service:
        target = f"{ns}-embeddings"
        port = service.url.rsplit(":", 1)[1]
        services(sim_cluster.env, CLUSTER).add_scrape_target(target, f"127.0.0.1:{port}", {})
        stop = threading.Event()

        def traffic() -> None:
            with httpx2.Client(trust_env=False, timeout=30) as http:
                while not stop.wait(0.2):
                    http.post(
                        f"{service.url}/v1/embeddings", json={"model": MODEL, "input": ["a", "b"]}
                    )

        sender = threading.Thread(target=traffic, daemon=True)
        sender.start()
        try:
            yield service
        finally:
            stop.set()
            sender.join(10)
            services(sim_cluster.env, CLUSTER).remove_scrape_target(target)


@pytest.fixture
def story(sim_cluster: SimCluster, ns: str, embeddings: Service) -> str:
    """The downscaler's whole cycle once, on a GPU Deployment, beside the real inference
    service under traffic; returns Prometheus' URL."""
    client = sim_cluster.client
    client.create(deployment(ns, "llm", 1, gpus=1))
    set_traffic(sim_cluster.env, CLUSTER, ns, "llm", 3)
    requests = policy(ns).to_dict()["spec"]["signals"][0]
    client.create(policy(ns, signals=[requests, gpu_signal(ns)]))
    set_traffic(sim_cluster.env, CLUSTER, ns, "llm", 0)
    wait_for("scale to zero", lambda: replicas(client, ns, "llm") == 0, timeout=90)
    set_traffic(sim_cluster.env, CLUSTER, ns, "llm", 3)
    wait_for("wake restore", lambda: replicas(client, ns, "llm") == 1, timeout=30)
    ports = services(sim_cluster.env, CLUSTER).ports()
    assert ports is not None
    url = ports.prometheus_url
    wait_for(
        "wake latency scraped",
        lambda: finite_samples(
            instant_query(url, "sum(gpuplane_downscaler_wake_seconds_count) > 0")
        ),
        timeout=30,
    )
    wait_for(
        "the inference service's latency scraped",
        lambda: finite_samples(
            instant_query(
                url, f'rate(http_request_duration_seconds_count{{namespace="{ns}"}}[10s]) > 0'
            )
        ),
        timeout=30,
    )
    # The pod holds the GPU again and its utilisation series carries it.
    wait_for(
        "GPU held by the woken pod",
        lambda: finite_samples(instant_query(url, f'DCGM_FI_DEV_GPU_UTIL{{namespace="{ns}"}} > 0')),
        timeout=30,
    )
    return url


def png_size(data: bytes) -> tuple[int, int]:
    """Width and height from the IHDR chunk, after checking its CRC."""
    assert data[:8] == PNG_SIGNATURE
    length, kind = struct.unpack(">I4s", data[8:16])
    assert kind == b"IHDR" and length == 13
    body = data[16:29]
    (crc,) = struct.unpack(">I", data[29:33])
    assert zlib.crc32(kind + body) == crc
    width, height = struct.unpack(">II", body[:8])
    return width, height


def test_every_dashboard_query_returns_data(sim_cluster: SimCluster, story: str) -> None:
    result = sim_cluster.cli("observability", "check", "--live", "-o", "json")
    rows = json.loads(result.stdout)
    failed = [row for row in rows if not row["ok"]]
    assert result.code == 0 and not failed, json.dumps(failed, indent=2)
    data = [row for row in rows if row["check"] == "data"]
    panels = {row["where"] for row in data}
    assert {row["source"] for row in data} == {"gpu.json", "downscaler.json", "inference.json"}
    assert any("Cold start by phase" in where for where in panels)
    # The inference service runs in this story: its panels were checked, not skipped.
    assert not any(row["detail"].startswith("skipped") for row in data)
    assert any("Wake latency" in where for where in panels)
    assert any("GPU utilisation per pod" in where for where in panels)
    assert all(row["check"] == "parse" for row in rows if row["source"].endswith(".yaml"))
    # The sim's Prometheus evaluates observability/rules too: its recording rules answer.
    for record in ("gpuplane:scaled_down_targets:sum", "gpuplane:gpus_reclaimed:sum"):
        assert finite_samples(instant_query(story, record)) == 1, record


def test_report_png_from_the_running_platform(
    sim_cluster: SimCluster, story: str, tmp_path: Path
) -> None:
    target = tmp_path / "report.png"
    result = sim_cluster.cli("report", "--png", str(target), "--since", "5m")
    assert result.code == 0, result.stderr
    data = target.read_bytes()
    # 16 x 15 inches at 100 dpi: four panels and the foot line.
    assert png_size(data) == (1600, 1500)
    assert len(data) > 30_000, len(data)  # lines, legends and text, not a blank canvas
    assert "4 panels" in result.stdout
    series = int(result.stdout.split("panels, ")[1].split(" series")[0])
    assert series >= 9  # GPUs, allocation x2, downscaler x4, inference p50 and p99
    again = sim_cluster.cli("report", "--png", str(target), "--since", "5m", "-o", "json")
    summary = json.loads(again.stdout)
    assert summary["bytes"] == target.stat().st_size
    downscaler = next(p for p in summary["panels"] if p["title"] == "Downscaler actions")
    assert {"scale-down", "restore"} <= set(downscaler["series"])
    latency = next(p for p in summary["panels"] if p["title"].startswith("Inference latency"))
    assert {"embeddings p50", "embeddings p99"} <= set(latency["series"])
    # The KWOK gpu node's series come from the traffic simulator, and the report says so;
    # the real service's latency is not simulated.
    simulated = {p["title"] for p in summary["panels"] if p["simulated"]}
    assert simulated == {"GPU utilisation per GPU", "GPU allocation"}
    assert summary["leftOut"] == []
    assert "simulated: GPU utilisation per GPU" in result.stdout


def test_report_names_an_unreachable_prometheus(sim_cluster: SimCluster, tmp_path: Path) -> None:
    result = sim_cluster.cli(
        "report", "--png", str(tmp_path / "r.png"), "--prometheus", "http://127.0.0.1:9"
    )
    assert result.code == 1
    assert "127.0.0.1:9" in result.stderr and "unreachable" in result.stderr
    assert not (tmp_path / "r.png").exists()


def test_report_rejects_bad_input_by_name(sim_cluster: SimCluster, tmp_path: Path) -> None:
    since = sim_cluster.cli("report", "--png", str(tmp_path / "r.png"), "--since", "soon")
    assert since.code == 2 and "--since" in since.stderr and "'soon'" in since.stderr
    nowhere = sim_cluster.cli("report", "--png", str(tmp_path / "missing" / "r.png"))
    assert nowhere.code == 2 and "does not exist" in nowhere.stderr
    url = sim_cluster.cli("report", "--png", str(tmp_path / "r.png"), "--prometheus", "localhost")
    assert url.code == 2 and "http(s) URL" in url.stderr
    assert list(tmp_path.iterdir()) == []
