"""Autoscaling beyond one replica on the real local cluster: the Prometheus adapter (built
from its module) serves custom.metrics.k8s.io through an APIService the real
kube-apiserver reaches; the HPA controller of the real kube-controller-manager scales a
Deployment on the in-flight requests of a real inference service (a process on
127.0.0.1, scraped by the cluster's real Prometheus). The Deployment's replicas are KWOK
pods (scheduled and marked Ready, never executed): the scaling decisions are real, the
added replicas serve nothing here.

The HPA controller syncs every 15 s (kube-controller-manager's default, kept): each step
takes up to that long.
"""

from __future__ import annotations

import contextlib
import http.server
import json
import os
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2
import pytest
from lightkube.resources.apiregistration_v1 import APIService
from lightkube.resources.autoscaling_v2 import HorizontalPodAutoscaler
from lightkube.resources.core_v1 import Pod
from lightkube.types import PatchType

from gpuplane.backends.local.autoscaling import PROCESS, MetricsAdapter
from gpuplane.backends.local.gpu_exporter_service import EXPORTER_MANIFEST, daemonset_of
from gpuplane.backends.local.pod_targets import targets_of
from gpuplane.backends.local.state import LocalState
from gpuplane.gpu_exporter.exposition import exposition
from gpuplane.gpu_exporter.nvml_readings import GpuReading
from gpuplane.gpu_exporter.podresources import Holder
from gpuplane.kube.apply import read_documents
from gpuplane.toolchain import repo_root
from tests.integration.autoscale_kit import hpa, hpa_condition, load, ready_replicas
from tests.integration.conftest import SimCluster
from tests.integration.downscaler_kit import (
    deployment,
    ledger,
    policy,
    replicas,
    scaled_down,
    services,
    set_traffic,
    wait_for,
)
from tests.integration.inference_kit import LLM, Service, running_service
from tests.integration.llm_kit import LONG, chat

CLUSTER = "gpuplane-it"
HPA_SYNC = 15.0


@pytest.fixture(scope="module")
def adapter(sim_cluster: SimCluster) -> Iterator[SimCluster]:
    up = sim_cluster.cli("autoscale", "up")
    assert up.code == 0, up.stdout + up.stderr
    yield sim_cluster
    down = sim_cluster.cli("autoscale", "down")
    assert down.code == 0, down.stderr


@pytest.fixture
def service(tmp_path: Path, adapter: SimCluster, ns: str) -> Iterator[Service]:
    """A real inference service labelled as Deployment ``svc`` of ``ns``, scraped by the
    cluster's Prometheus for as long as the test runs."""
    with running_service(
        tmp_path / "inference.log",
        "--device=cpu", f"--namespace={ns}", "--deployment=svc", "--max-batch-size=8",
    ) as running:  # fmt: skip
        scrape = services(adapter.env, CLUSTER)
        scrape.add_scrape_target(f"hpa-{ns}", running.url.removeprefix("http://"), {})
        try:
            yield running
        finally:
            scrape.remove_scrape_target(f"hpa-{ns}")


def kubectl_raw(cluster: SimCluster, path: str) -> dict[str, Any]:
    kubectl = shutil.which("kubectl")
    assert kubectl, (
        "kubectl is a prerequisite of the test suite (apt-get install kubernetes-client)"
    )
    env = {**os.environ, "KUBECONFIG": str(cluster.kubeconfig)}
    answer = subprocess.run(
        [kubectl, "get", "--raw", path], env=env, capture_output=True, text=True, timeout=60,
        check=True,
    )  # fmt: skip
    return dict(json.loads(answer.stdout))


def served_metric(cluster: SimCluster, what: str, path: str) -> dict[str, Any]:
    """The custom metrics API's answer at ``path``, once the adapter serves it (it lists
    new series every 10 s; until then the API answers 404)."""

    def answer() -> dict[str, Any] | None:
        with contextlib.suppress(subprocess.CalledProcessError):
            return kubectl_raw(cluster, path)
        return None

    return wait_for(what, answer, timeout=60)


def test_the_api_server_serves_custom_metrics_from_the_adapter(
    adapter: SimCluster, service: Service, ns: str
) -> None:
    status = adapter.cli("autoscale", "status", "-o", "json")
    assert status.code == 0, status.stdout + status.stderr
    assert json.loads(status.stdout)["available"] is True
    for version in ("v1beta1", "v1beta2"):
        live = adapter.client.get(APIService, f"{version}.custom.metrics.k8s.io")
        assert live.spec and live.spec.service and live.spec.service.namespace == "custom-metrics"
    path = (
        f"/apis/custom.metrics.k8s.io/v1beta2/namespaces/{ns}/deployments.apps/svc/"
        "inference_requests_in_flight"
    )
    (item,) = served_metric(adapter, "the in-flight metric of svc", path)["items"]
    assert item["describedObject"]["name"] == "svc"
    assert item["metric"]["name"] == "inference_requests_in_flight"


def test_the_hpa_scales_out_on_in_flight_requests_and_back_in(
    adapter: SimCluster, service: Service, ns: str
) -> None:
    client = adapter.client
    client.create(deployment(ns, "svc", 1))
    client.create(hpa(ns))
    wait_for(
        "the HPA reading the metric",
        lambda: hpa_condition(client, ns, "ScalingActive").get("status") == "True",
        timeout=90,
    )
    assert replicas(client, ns, "svc") == 1
    with load(service.url, clients=8):
        # 8 in flight at a target of 2 per replica: 4 replicas, all Ready (KWOK).
        wait_for("4 replicas", lambda: replicas(client, ns, "svc") == 4, timeout=120)
        wait_for("4 ready replicas", lambda: ready_replicas(client, ns) == 4, timeout=60)
        assert service.metric("inference_requests_in_flight") >= 1
    wait_for("back to 1 replica", lambda: replicas(client, ns, "svc") == 1, timeout=120)


def test_the_hpa_scales_the_chat_model_on_its_streams(
    tmp_path: Path, adapter: SimCluster, ns: str
) -> None:
    """The same metric from the chat model service (llama.cpp, two streams generating per
    replica, as apps/llm's CPU variant): 6 long answers in flight at a target of 2 per
    replica make 3 replicas, and without them the HPA goes back to 1. No request fails."""
    client = adapter.client
    flags = ("--max-streams=2", "--max-waiting=16", f"--namespace={ns}", "--deployment=chat")
    with running_service(tmp_path / "llm.log", *flags, module=LLM) as llm:
        scrape = services(adapter.env, CLUSTER)
        scrape.add_scrape_target(f"hpa-llm-{ns}", llm.url.removeprefix("http://"), {})
        try:
            client.create(deployment(ns, "chat", 1))
            client.create(hpa(ns, target="chat"))

            def active() -> bool:
                return hpa_condition(client, ns, "ScalingActive", "chat").get("status") == "True"

            wait_for("the HPA reading the chat model's metric", active, timeout=90)
            failures: list[int] = []
            answer = ("/v1/chat/completions", chat(LONG, max_tokens=64))
            with load(llm.url, clients=6, failures=failures, request=answer):
                wait_for("3 replicas", lambda: replicas(client, ns, "chat") == 3, timeout=120)
                assert llm.metric("llm_streams_waiting") + llm.metric("llm_streams_active") >= 3
            wait_for("back to 1 replica", lambda: replicas(client, ns, "chat") == 1, timeout=120)
            assert failures == []
        finally:
            scrape.remove_scrape_target(f"hpa-llm-{ns}")


def test_a_missing_metric_or_a_stopped_adapter_holds_the_scale(
    adapter: SimCluster, service: Service, ns: str
) -> None:
    """Never scale on metrics the HPA cannot read: a metric nobody serves, then the adapter
    stopped, each leaves the Deployment where it is with a condition that says why; with
    the adapter back, the same HPA scales in at once (so it would have, had it read 0)."""
    client = adapter.client
    client.create(deployment(ns, "svc", 3))
    client.create(hpa(ns, metric="no_such_metric"))
    reason = wait_for(
        "a condition naming the unreadable metric",
        lambda: (
            hpa_condition(client, ns, "ScalingActive").get("reason") == "FailedGetObjectMetric"
            and hpa_condition(client, ns, "ScalingActive")
        ),
        timeout=60,
    )
    assert "no_such_metric" in reason["message"]
    time.sleep(2 * HPA_SYNC)
    assert replicas(client, ns, "svc") == 3

    state = LocalState(Path(adapter.env["GPUPLANE_STATE"]), CLUSTER)
    MetricsAdapter(state).stop((PROCESS,))
    try:
        metrics = {"spec": {"metrics": hpa(ns).to_dict()["spec"]["metrics"]}}
        client.patch(
            HorizontalPodAutoscaler, "svc", metrics, namespace=ns, patch_type=PatchType.MERGE
        )
        status = adapter.cli("autoscale", "status")
        assert status.code == 1 and "not running" in status.stdout, status.stdout
        failed = wait_for(
            "a condition saying the metric could not be read",
            lambda: (
                "inference_requests_in_flight"
                in hpa_condition(client, ns, "ScalingActive").get("message", "")
                and hpa_condition(client, ns, "ScalingActive").get("status") == "False"
            ),
            timeout=60,
        )
        assert failed
        time.sleep(2 * HPA_SYNC)
        assert replicas(client, ns, "svc") == 3
    finally:
        up = adapter.cli("autoscale", "up")
        assert up.code == 0, up.stdout + up.stderr
    wait_for("scaled in once the metric reads 0", lambda: replicas(client, ns, "svc") == 1, 120)


def test_the_downscaler_and_the_hpa_never_undo_each_other(
    adapter: SimCluster, service: Service, ns: str
) -> None:
    """The HPA owns 1..N, the downscaler N <-> 0: scaled out by load, then idle, the
    downscaler takes it to 0 with the count in its ledger and the HPA stands still at 0
    (ScalingDisabled); a wake restores that count and the HPA takes over again."""
    client = adapter.client
    client.create(deployment(ns, "svc", 1))
    # The HPA's scale-in waits 10 minutes: what follows is the downscaler's doing.
    client.create(hpa(ns, scale_down_window=600))
    with load(service.url, clients=6):
        wait_for("3 replicas", lambda: replicas(client, ns, "svc") == 3, timeout=120)
    client.create(policy(ns, idleFor="6s"))
    wait_for("scaled to zero by the downscaler", lambda: scaled_down(client, ns, "svc"), 90)
    assert ledger(client, ns, "svc") == "3"
    disabled = wait_for(
        "the HPA standing still at 0",
        lambda: hpa_condition(client, ns, "ScalingActive").get("reason") == "ScalingDisabled",
        timeout=60,
    )
    assert disabled
    time.sleep(2 * HPA_SYNC)
    assert replicas(client, ns, "svc") == 0
    set_traffic(adapter.env, CLUSTER, ns, "svc", 2.0)  # the wake signal: traffic arriving
    try:
        wait_for("restored to the ledger's 3", lambda: replicas(client, ns, "svc") == 3, 90)
        wait_for(
            "the HPA active again",
            lambda: hpa_condition(client, ns, "ScalingActive").get("status") == "True",
            timeout=60,
        )
    finally:
        set_traffic(adapter.env, CLUSTER, ns, "svc", 0.0)
    assert replicas(client, ns, "svc") == 3


def test_down_unregisters_the_api(adapter: SimCluster) -> None:
    """Last in this module: ``down`` stops the adapter and leaves no APIService (one left
    behind would make discovery report the group unavailable); ``up`` brings it back."""
    down = adapter.cli("autoscale", "down")
    assert down.code == 0, down.stderr
    names = {item.metadata.name for item in adapter.client.list(APIService) if item.metadata}
    assert not {n for n in names if n and n.endswith("custom.metrics.k8s.io")}
    status = adapter.cli("autoscale", "status")
    assert status.code == 1
    up = adapter.cli("autoscale", "up")
    assert up.code == 0, up.stdout + up.stderr


@contextlib.contextmanager
def serving_metrics(text: str) -> Iterator[str]:
    """``text`` as /metrics on a loopback port (what a gpu-exporter pod answers); yields
    host:port."""

    class Metrics(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = text.encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; version=0.0.4")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Metrics)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_gpu_utilisation_reaches_the_metrics_api_as_the_pod_discovery_scrapes_the_exporter(
    adapter: SimCluster, ns: str
) -> None:
    """gpu-exporter's series scraped as the pod discovery scrapes its pod (target labels:
    the exporter's own pod and namespace): a GPU's holder keeps its pod and namespace, so
    the adapter serves gpu_utilization_percent for that pod; a GPU no pod holds is never
    attributed to the exporter's pod. (The exposition is the exporter's own code, its
    readings made up: no GPU here.)"""
    client = adapter.client
    client.create(deployment(ns, "holder", 1))

    def holder_pod() -> str | None:
        pods = list(client.list(Pod, namespace=ns, labels={"app.kubernetes.io/name": "holder"}))
        return pods[0].metadata.name if pods and pods[0].metadata else None

    pod_name = wait_for("the holder's pod", holder_pod, timeout=60)
    readings = [
        GpuReading(0, "GPU-held", "NVIDIA H100", "00000000:01:00.0", 0,
                   {"DCGM_FI_DEV_GPU_UTIL": 42.0}),
        GpuReading(1, "GPU-free", "NVIDIA H100", "00000000:02:00.0", 1,
                   {"DCGM_FI_DEV_GPU_UTIL": 7.0}),
    ]  # fmt: skip
    text = exposition(readings, {"GPU-held": [Holder(ns, pod_name, "app")]}, "agent-0", "580")
    # The exporter's pod as the shipped DaemonSet makes it, as the pod discovery sees it.
    template = daemonset_of(read_documents([repo_root() / EXPORTER_MANIFEST]))["spec"]["template"]
    metadata = {"name": f"gpu-exporter-{ns}", "namespace": "gpu-operator-resources"}
    exporter_pod = {
        "metadata": {**metadata, "annotations": template["metadata"]["annotations"]},
        "spec": {"nodeName": "agent-0"},
        "status": {"phase": "Running", "podIP": "10.244.0.3"},
    }
    (target,) = targets_of([exporter_pod], frozenset({"agent-0"}))
    scrape = services(adapter.env, CLUSTER)
    with serving_metrics(text) as address:
        scrape.add_scrape_target(f"gpu-exporter-{ns}", address, target["labels"])
        try:
            path = (
                f"/apis/custom.metrics.k8s.io/v1beta2/namespaces/{ns}/pods/{pod_name}/"
                "gpu_utilization_percent"
            )
            (item,) = served_metric(adapter, "the holder's GPU utilisation", path)["items"]
            assert item["describedObject"]["name"] == pod_name
            assert float(item["value"]) == 42.0
            ports = scrape.ports()
            assert ports is not None
            answer = httpx2.get(
                f"{ports.prometheus_url}/api/v1/query", trust_env=False, timeout=10,
                params={"query": 'DCGM_FI_DEV_GPU_UTIL{namespace="gpu-operator-resources"}'},
            ).json()  # fmt: skip
            assert answer["data"]["result"] == [], answer
        finally:
            scrape.remove_scrape_target(f"gpu-exporter-{ns}")
