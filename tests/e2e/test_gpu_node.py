"""The real GPU node, end to end, on a host with an NVIDIA GPU (the GPU machine, through
`make e2e-gpu`): the local backend with its gpu node as a kubelet node. Covers: `up`
registers the node and the NVIDIA device plugin DaemonSet (image built offline,
RuntimeClass nvidia = the NVIDIA Container Runtime in CDI mode) advertises every GPU with
the CDI device-list strategy (cdi-cri: containerd injects the allocated GPU);
`verify` passes with no GPU check skipped and the smoke test's nvidia-smi names the GPU;
a GPU pod sees its GPU, with RuntimeClass nvidia and without any;
a pod asking for more GPUs than the node has stays Pending;
time-slicing advertises N per GPU; the HPA adds a replica on GPU utilisation read through
the real metrics adapter; `down` leaves nothing; then, on a cluster of its own
with Prometheus and the other services, the demo's two acts play on the real gpu node.
Timings go to $GPUPLANE_E2E_OUT/timings.json. Without a GPU: "not run: needs an NVIDIA GPU"."""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import httpx2
import pytest
import yaml
from lightkube import ApiError, Client
from lightkube.resources.apps_v1 import Deployment
from lightkube.resources.autoscaling_v2 import HorizontalPodAutoscaler
from lightkube.resources.core_v1 import Node, Pod
from lightkube.utils.quantity import parse_quantity

from gpuplane.backends.local.kubelet.layout import (
    BRIDGE,
    KUBELET_ROOT,
    NVIDIA_CDI_SPEC,
    PLUGIN_CDI_SPEC,
)
from gpuplane.backends.local.services import free_port
from gpuplane.backends.local.tokens import mint_token
from gpuplane.cli.main import main
from gpuplane.downscaler.resource import DownscalePolicy
from gpuplane.kube import connect
from gpuplane.kube.apply import apply_documents, apply_files
from gpuplane.kube.files import user_kubeconfig, write_private
from gpuplane.kube.nodes import read_node
from gpuplane.nvml import probe_nvml, product_label
from gpuplane.toolchain.images import TOOLBOX_NAME

REPO = Path(__file__).resolve().parents[2]
CLUSTER = "gpuplane-e2e-gpu"
GPU_NODE = "agent-2"
PROBE = probe_nvml()
OUT = Path(os.environ.get("GPUPLANE_E2E_OUT", REPO / "build" / "e2e-gpu" / "out"))
TIMINGS: dict[str, float] = {}

pytestmark = pytest.mark.skipif(
    bool(PROBE.error) or PROBE.gpus == 0 or os.geteuid() != 0,
    reason=f"not run: needs an NVIDIA GPU and root ({PROBE.error or 'no GPU'})",
)


def cli(platform_file: Path, env: dict[str, str], *args: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(["-f", str(platform_file), *args], stdout=out, stderr=err, env=env)
    return code, out.getvalue(), err.getvalue()


def platform_document(sharing: int | None = None, name: str = CLUSTER) -> dict[str, Any]:
    """The repository's topology with its gpu node real, as this host's GPUs are."""
    document = yaml.safe_load((REPO / "platform.yaml").read_text())
    document["metadata"]["name"] = name
    for node in document["spec"]["nodes"]:
        if node["name"] == GPU_NODE:
            node.update(
                runtime="kubelet", gpus=PROBE.gpus, gpuProduct=product_label(PROBE.names[0])
            )
            if sharing:
                node["gpuSharing"] = {"replicas": sharing}
    return document


class Cluster:
    def __init__(self, directory: Path, name: str = CLUSTER) -> None:
        self.name = name
        self.file = directory / "platform.yaml"
        self.env = {**os.environ, "GPUPLANE_STATE": str(directory / "state")}
        self.kubeconfig = directory / "state" / name / "kubeconfig"

    def write(self, sharing: int | None = None) -> None:
        document = platform_document(sharing, self.name)
        self.file.write_text(yaml.safe_dump(document, sort_keys=False))

    def run(self, *args: str) -> tuple[int, str, str]:
        return cli(self.file, self.env, *args)

    @property
    def client(self) -> Client:
        return connect(self.kubeconfig)


def timed(name: str, start: float) -> None:
    TIMINGS[name] = round(time.monotonic() - start, 2)
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "timings.json").write_text(json.dumps(TIMINGS, indent=2))


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    made = Cluster(tmp_path_factory.mktemp("e2e-gpu"))
    made.write()
    start = time.monotonic()
    code, out, err = made.run("up", "--no-services")
    (OUT / "up.log").parent.mkdir(parents=True, exist_ok=True)
    (OUT / "up.log").write_text(out + err)
    timed("up_seconds", start)
    collect_logs(made)
    try:
        assert code == 0, out + err
        yield made
    finally:
        collect_logs(made)
        made.run("down")


def collect_logs(cluster: Cluster, prefix: str = "") -> None:
    """Every process log of the cluster (control plane, containerd, kubelet), tails."""
    for log in sorted(cluster.kubeconfig.parent.rglob("*.log")):
        (OUT / f"{prefix}{log.parent.name}-{log.name}").write_bytes(log.read_bytes()[-400_000:])


def gpu_allocatable(client: Client) -> int:
    return read_node(client.get(Node, GPU_NODE).to_dict()).gpus_allocatable


def test_the_device_plugin_advertises_every_gpu(cluster: Cluster) -> None:
    node = read_node(cluster.client.get(Node, GPU_NODE).to_dict())
    assert not node.simulated and node.runtime.startswith("containerd://")
    assert node.gpus_allocatable == PROBE.gpus
    assert node.labels["nvidia.com/gpu.product"] == product_label(PROBE.names[0])
    assert NVIDIA_CDI_SPEC.is_file()
    # cdi-cri: the plugin wrote its own spec of the node's GPUs, one device per GPU.
    spec = json.loads(PLUGIN_CDI_SPEC.read_text())
    (OUT / "plugin-cdi-spec.json").write_text(json.dumps(spec, indent=2))
    assert spec["kind"] == "k8s.device-plugin.nvidia.com/gpu"
    assert len(spec["devices"]) >= PROBE.gpus, spec["devices"]


def test_verify_passes_with_every_gpu_check_run(cluster: Cluster) -> None:
    start = time.monotonic()
    code, out, err = cluster.run("verify", "-o", "junit")
    timed("verify_seconds", start)
    (OUT / "verify-junit.xml").write_text(out)
    # Our own verify output, not untrusted input.
    tree = ElementTree.fromstring(out)  # noqa: S314
    cases = {case.get("name"): case for case in tree.iter("testcase")}
    outcome = {
        name: "failed" if case.find("failure") is not None
        else "skipped" if case.find("skipped") is not None
        else "passed"
        for name, case in cases.items()
    }  # fmt: skip
    gpu_checks = {name: result for name, result in outcome.items() if name.startswith("gpu.")}
    assert set(gpu_checks) >= {"gpu.capacity", "gpu.device-plugin", "gpu.smoke-test"}
    assert set(gpu_checks.values()) == {"passed"}, outcome
    assert code == 0, err
    smoke = cases["gpu.smoke-test"].findtext("system-out") or ""
    (OUT / "smoke-test.txt").write_text(smoke + "\n")
    assert PROBE.names[0].split()[-1] in smoke, smoke


def gpu_pod(name: str, gpus: int, command: list[str], *, runtime_class: bool = True) -> Pod:
    return Pod.from_dict(
        {
            "metadata": {"name": name, "namespace": "default"},
            "spec": {
                "restartPolicy": "Never",
                **({"runtimeClassName": "nvidia"} if runtime_class else {}),
                "automountServiceAccountToken": False,
                "nodeSelector": {"node-role.kubernetes.io/gpu": "true"},
                "tolerations": [
                    {"key": "node-role.kubernetes.io/gpu", "operator": "Exists",
                     "effect": "NoSchedule"}
                ],
                "containers": [
                    {"name": "main", "image": TOOLBOX_NAME, "imagePullPolicy": "Never",
                     "command": command, "resources": {"limits": {"nvidia.com/gpu": gpus}}}
                ],
            },
        }
    )  # fmt: skip


def run_to_end(client: Client, pod: Pod, timing: str) -> tuple[str, str]:
    """Create ``pod``, wait until it ends; its phase and log (also under $OUT)."""
    name = pod.metadata.name  # type: ignore[union-attr]
    start = time.monotonic()
    client.create(pod)
    deadline = time.monotonic() + 180
    phase = "Pending"
    while time.monotonic() < deadline and phase not in ("Succeeded", "Failed"):
        status = client.get(Pod, name, namespace="default").status
        phase = (status.phase if status else None) or "Pending"
        time.sleep(0.2)
    timed(timing, start)
    log = "\n".join(client.log(name, namespace="default"))
    (OUT / f"{name}.log").write_text(log)
    return phase, log


def test_a_gpu_pod_sees_its_gpu(cluster: Cluster) -> None:
    command = ["/bin/sh", "-c", "nvidia-smi -L; nvidia-smi"]
    phase, log = run_to_end(cluster.client, gpu_pod("gpu-pod", 1, command), "gpu_pod_seconds")
    assert phase == "Succeeded", log
    assert "GPU 0: NVIDIA" in log


def test_the_allocated_gpu_arrives_by_cdi_under_plain_runc(cluster: Cluster) -> None:
    """No RuntimeClass, so no NVIDIA runtime: the GPU can only come from the CDI device the
    plugin named in its allocation, injected by containerd. The plugin's spec sets
    NVIDIA_VISIBLE_DEVICES=void (so a runtime that reads it injects nothing more); with the
    envvar strategy the pod would get the GPU's UUID there and no device at all."""
    command = ["/bin/sh", "-c", "echo visible=${NVIDIA_VISIBLE_DEVICES-unset}; nvidia-smi -L"]
    pod = gpu_pod("cdi-pod", 1, command, runtime_class=False)
    phase, log = run_to_end(cluster.client, pod, "cdi_gpu_pod_seconds")
    assert phase == "Succeeded", log
    lines = log.splitlines()
    assert lines[0] == "visible=void", log
    assert [line for line in lines if line.startswith("GPU ")] == [
        line for line in lines if line.startswith("GPU 0: NVIDIA")
    ], log
    assert "GPU 0: NVIDIA" in log


def test_more_gpus_than_the_node_has_stay_pending(cluster: Cluster) -> None:
    client = cluster.client
    client.create(gpu_pod("greedy", PROBE.gpus + 1, ["/bin/true"]))
    time.sleep(5)
    pod = client.get(Pod, "greedy", namespace="default")
    assert pod.status is not None and pod.status.phase == "Pending"
    reasons = " ".join(c.message or "" for c in pod.status.conditions or [])
    assert "Insufficient nvidia.com/gpu" in reasons
    client.delete(Pod, "greedy", namespace="default")


def wait_ready_pod(client: Client, namespace: str, labels: dict[str, str], timeout: float) -> Pod:
    deadline = time.monotonic() + timeout
    pods: list[Pod] = []
    while time.monotonic() < deadline:
        pods = list(client.list(Pod, namespace=namespace, labels=labels))
        for pod in pods:
            conditions = (pod.status.conditions if pod.status else None) or []
            if any(c.type == "Ready" and c.status == "True" for c in conditions):
                return pod
            restarts = max(
                (
                    c.restartCount
                    for c in (pod.status.containerStatuses if pod.status else None) or []
                ),
                default=0,
            )
            if restarts >= 2:  # crashing: its log (collected under $OUT) says why
                raise AssertionError(f"{labels} in {namespace} keeps crashing: {pod.status}")
        time.sleep(0.5)
    raise AssertionError(f"no Ready pod {labels} in {namespace}: {[p.status for p in pods]}")


def pid_running(module: bytes) -> int:
    """The host pid of the process started with ``-m module`` (a container's, seen from
    the host): its network namespace is the pod's."""
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                if module in (proc / "cmdline").read_bytes().split(b"\0"):
                    return int(proc.name)
            except OSError:
                continue
    raise AssertionError(f"no process runs -m {module.decode()}")


def torch_python() -> list[str]:
    """The interpreter with torch the service images are assembled from, and the packed
    model's site directory beside it, as --python/--python-path arguments."""
    python = Path(os.environ.get("GPUPLANE_TORCH_PYTHON", "/opt/torch/.venv/bin/python"))
    if not python.is_file():
        pytest.skip(f"not run: no Python with torch at {python} (GPUPLANE_TORCH_PYTHON)")
    site = os.environ.get("GPUPLANE_SERVICE_SITE")
    return ["--python", str(python), *(["--python-path", site] if site else [])]


@pytest.mark.timeout(540)  # assembles and imports an image of several GB
def test_the_inference_service_runs_on_cuda_and_the_exporter_names_its_pod(
    cluster: Cluster,
) -> None:
    """apps/inference and apps/gpu-exporter as they are, their images assembled on this
    host from the interpreter that has torch (plus the packed wheels): the service's pod
    on the gpu node runs the model on CUDA, and gpu-exporter's DCGM series carry its pod."""
    interpreter = torch_python()
    start = time.monotonic()
    build = ["image", "build", "--service", "inference", "--service", "gpu-exporter",
             *interpreter, "-o", "json"]  # fmt: skip
    code, out, err = cluster.run(*build)
    timed("service_images_build_seconds", start)
    assert code == 0, err
    built = json.loads(out)
    TIMINGS["inference_image_bytes"] = next(i["bytes"] for i in built if i["name"] == "inference")
    start = time.monotonic()
    code, out, err = cluster.run("image", "load", *(i["file"] for i in built), "-o", "json")
    timed("service_images_load_seconds", start)
    assert code == 0, err
    client = cluster.client
    start = time.monotonic()
    apply_files(
        client,
        [*sorted((REPO / "apps" / "inference").glob("*.yaml")),
         REPO / "apps" / "gpu-exporter" / "daemonset.yaml"],
    )  # fmt: skip
    server = wait_ready_pod(
        client,
        "ml",
        {"app.kubernetes.io/name": "inference", "app.kubernetes.io/component": "gpu"},
        300,
    )
    timed("inference_apply_to_ready_seconds", start)
    assert server.spec is not None and server.spec.nodeName == GPU_NODE
    url = f"http://{server.status.podIP}:8000"  # type: ignore[union-attr]
    sentences = [
        "A man is eating food.",
        "A man is eating a piece of bread.",
        "The new movie is awesome.",
    ]
    with httpx2.Client(trust_env=False, timeout=60) as http:
        answer = http.post(
            f"{url}/v1/embeddings", json={"model": "all-MiniLM-L6-v2", "input": sentences}
        )
        assert answer.status_code == 200, answer.text
        metrics = http.get(f"{url}/metrics").text
    (OUT / "inference-metrics.txt").write_text(metrics)
    vectors = [item["embedding"] for item in answer.json()["data"]]
    similarity = sum(a * b for a, b in zip(vectors[0], vectors[1], strict=True))
    TIMINGS["eating_sentences_cosine"] = round(similarity, 4)
    assert abs(similarity - 0.7553) < 0.002
    assert 'inference_device_info{deployment="inference",device="cuda"' in metrics
    # The benchmark from inside the pod's network namespace: its load stays on loopback.
    pid = pid_running(b"gpuplane.inference.main")
    report = OUT / "inference-gpu-bench.json"
    bench = [
        "nsenter", "-t", str(pid), "-n", sys.executable, str(REPO / "bench" / "inference.py"),
        "--url", "http://127.0.0.1:8000", "--seconds", "4", "-o", str(report),
    ]  # fmt: skip
    ran = subprocess.run(bench, capture_output=True, text=True, timeout=240, check=False)
    (OUT / "inference-gpu-bench.log").write_text(ran.stdout + ran.stderr)
    assert ran.returncode == 0, ran.stderr
    exporter = wait_ready_pod(
        client, "gpu-operator-resources", {"app.kubernetes.io/name": "gpu-exporter"}, 120
    )
    with httpx2.Client(trust_env=False, timeout=30) as http:
        exported = http.get(f"http://{exporter.status.podIP}:9400/metrics").text  # type: ignore[union-attr]
    (OUT / "gpu-exporter-metrics.txt").write_text(exported)
    name = server.metadata.name  # type: ignore[union-attr]
    held = [
        line for line in exported.splitlines()
        if line.startswith("DCGM_FI_DEV_FB_USED{") and f'pod="{name}"' in line
    ]  # fmt: skip
    assert held and 'namespace="ml"' in held[0] and 'container="server"' in held[0], exported
    assert "gpuplane_gpu_exporter_pod_resources_up 1" in exported


def started(command: list[str], log: Path, env: dict[str, str]) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env)


def answers_200(url: str) -> bool:
    try:
        return httpx2.get(url, trust_env=False, timeout=2).status_code == 200
    except httpx2.TransportError:
        return False


def wait_until(
    what: str, condition: Any, timeout: float, explain: Callable[[], str] | None = None
) -> None:
    """Until ``condition()`` holds; past ``timeout`` an AssertionError naming ``what``, and
    what ``explain()`` says of the state then."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            detail = f"; {explain()}" if explain is not None else ""
            raise AssertionError(f"timed out waiting for {what}{detail}")
        time.sleep(0.2)


ACTIVATOR_RATE = 'sum by (deployment) (rate(gpuplane_activator_requests_total{namespace="ml"}[2m]))'


@pytest.mark.timeout(300)
def test_a_request_held_at_zero_wakes_the_gpu_inference(cluster: Cluster) -> None:
    """The inference Deployment at zero (scaled down as the downscaler does: ledger and
    replicas in one write), the real downscaler and activator as processes on this host:
    one embeddings request through the activator is held, the downscaler restores the
    ledger's count on the activator's wake request (Prometheus is not reachable here:
    nothing else could wake it), and the request is answered by the new GPU pod."""
    client = cluster.client
    labels = {"app.kubernetes.io/name": "inference", "app.kubernetes.io/component": "gpu"}
    wait_ready_pod(client, "ml", labels, 120)  # from the test before
    apply_files(client, sorted((REPO / "charts" / "downscaler" / "crds").glob("*.yaml")))
    apply_files(client, [REPO / "deploy" / "activator" / "rbac.yaml"])
    token = mint_token(client, "gpuplane-system", "gpuplane-activator")
    own = cluster.kubeconfig.parent / "activator.kubeconfig"  # removed by down
    write_private(own, user_kubeconfig(cluster.kubeconfig, "gpuplane-activator", {"token": token}))
    policy = {
        "apiVersion": "gpuplane.io/v1alpha1", "kind": "DownscalePolicy",
        "metadata": {"name": "gpu-idle", "namespace": "ml"},
        "spec": {
            "selector": {"matchLabels": labels}, "interval": "1s", "idleFor": "1m",
            "signals": [{"name": "requests", "idleBelow": 0.05, "query": ACTIVATOR_RATE}],
            "onMetricsLoss": {"action": "Hold", "after": "1m"},
        },
    }  # fmt: skip
    apply_documents(client, [policy])
    # The CPU variant runs on a KWOK node here (simulated, no address behind it) and shares
    # the Service: removed, so the only endpoint is the real GPU pod's.
    client.delete(Deployment, "inference-cpu", namespace="ml")
    cpu = {"app.kubernetes.io/name": "inference", "app.kubernetes.io/component": "cpu"}
    wait_until(
        "the CPU variant gone", lambda: not list(client.list(Pod, namespace="ml", labels=cpu)), 60
    )
    scale_down = {"metadata": {"annotations": {"gpuplane.io/original-replicas": "1"}},
                  "spec": {"replicas": 0}}  # fmt: skip
    client.patch(Deployment, "inference", scale_down, namespace="ml")
    wait_until(
        "the GPU pod gone", lambda: not list(client.list(Pod, namespace="ml", labels=labels)), 120
    )
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    port, metrics, health, down_metrics = free_port(), free_port(), free_port(), free_port()
    routes = OUT / "routes.yaml"
    routes.write_text(yaml.safe_dump({"backends": [{
        "name": "inference", "namespace": "ml", "deployment": "inference", "service": "inference",
        "upstream": "endpoints:8000", "probePath": "/readyz",
        "match": {"pathPrefix": "/ml/inference/"}, "stripPrefix": True}]}))  # fmt: skip
    downscaler = started(
        [sys.executable, "-m", "gpuplane.downscaler.main", "--kubeconfig", str(cluster.kubeconfig),
         "--prometheus-url", "http://127.0.0.1:9", "--no-leader-election",
         "--metrics-address", f"127.0.0.1:{down_metrics}",
         "--health-address", f"127.0.0.1:{health}"],
        OUT / "downscaler.log", env,
    )  # fmt: skip
    activator = started(
        [sys.executable, "-m", "gpuplane.activator.main", "--config", str(routes),
         "--kubeconfig", str(own), "--listen", f"127.0.0.1:{port}",
         "--metrics-address", f"127.0.0.1:{metrics}"],
        OUT / "activator.log", env,
    )  # fmt: skip
    try:
        wait_until("the activator", lambda: answers_200(f"http://127.0.0.1:{metrics}/healthz"), 60)
        wait_until("the downscaler", lambda: answers_200(f"http://127.0.0.1:{health}/healthz"), 60)
        body = {"model": "all-MiniLM-L6-v2", "input": ["held while the GPU pod starts"]}
        start = time.monotonic()
        answer = httpx2.post(
            f"http://127.0.0.1:{port}/ml/inference/v1/embeddings",
            json=body,
            trust_env=False,
            timeout=240,
        )
        timed("activator_first_held_request_to_response_seconds", start)
        assert answer.status_code == 200, answer.text
        assert len(answer.json()["data"][0]["embedding"]) == 384
        live = client.get(Deployment, "inference", namespace="ml")
        assert live.spec is not None and live.spec.replicas == 1
        exported = httpx2.get(f"http://127.0.0.1:{metrics}/metrics", trust_env=False).text
        (OUT / "activator-metrics.txt").write_text(exported)
        assert (
            'gpuplane_activator_hold_seconds_count{deployment="inference",namespace="ml"} 1.0'
            in exported
        )
        server = wait_ready_pod(client, "ml", labels, 30)
        metrics_text = httpx2.get(
            f"http://{server.status.podIP}:8000/metrics", trust_env=False
        ).text  # type: ignore[union-attr]
        (OUT / "inference-after-wake-metrics.txt").write_text(metrics_text)
    finally:
        for process in (activator, downscaler):
            process.terminate()
            process.wait(15)


def test_time_slicing_advertises_n_per_gpu(cluster: Cluster) -> None:
    cluster.write(sharing=4)
    start = time.monotonic()
    code, out, err = cluster.run("up", "--no-services")
    timed("time_slicing_seconds", start)
    assert code == 0, out + err
    assert gpu_allocatable(cluster.client) == 4 * PROBE.gpus


# Percent per pod. A loaded MiniLM keeps an H100 busy only 12-14 % of the time (gpu-exporter
# read just after the inference test's 8 clients of 128 texts, 24,774 texts/s, 2026-12-07):
# its service is bound by tokenising and HTTP on the CPU long before the GPU. A target of 25
# was never crossed (the HPA held 1 replica through 110 s of load); idle reads 0.
GPU_UTIL_TARGET = "8"


def hpa_metric(hpa: HorizontalPodAutoscaler, name: str) -> float | None:
    """The HPA's last reading of its Pods metric ``name`` (average per pod), if any."""
    for current in (hpa.status.currentMetrics if hpa.status else None) or []:
        if current.pods is not None and current.pods.metric.name == name:
            value = parse_quantity(current.pods.current.averageValue)
            return float(value) if value is not None else None
    return None


@pytest.mark.timeout(360)  # the GPU machine's call lasts 600 s at most, the run before it included
def test_the_hpa_scales_the_gpu_inference_on_gpu_utilisation(cluster: Cluster) -> None:
    """Issue 30 with a real GPU: apps/autoscaling/inference-gpu.yaml as it is but for its GPU
    utilisation target (GPU_UTIL_TARGET per pod, so the embeddings model's load crosses it), on the
    real custom metrics path: gpu-exporter (NVML) -> Prometheus -> the Prometheus adapter ->
    the API server's aggregator -> kube-controller-manager's HPA. Idle, the GPU reads 0 %
    and the HPA keeps one replica; under load from inside the pod's network namespace it
    adds a second, which gets a time-sliced share of the GPU (the test above left 4 per
    GPU) and becomes Ready on it. Timings: load step -> second replica Ready."""
    client = cluster.client
    labels = {"app.kubernetes.io/name": "inference", "app.kubernetes.io/component": "gpu"}
    # The earlier test's policy: Prometheus runs from here on, and the downscaler with it.
    # (Run without that test, the CRD is not there yet: a plain 404 of the API.)
    with contextlib.suppress(ApiError, httpx2.HTTPStatusError):
        client.delete(DownscalePolicy, "gpu-idle", namespace="ml")
    start = time.monotonic()
    code, out, err = cluster.run("up")  # the same cluster, now with Prometheus and services
    timed("up_services_seconds", start)
    assert code == 0, out + err
    start = time.monotonic()
    code, out, err = cluster.run("autoscale", "up")
    timed("autoscale_up_seconds", start)
    assert code == 0, out + err
    wait_ready_pod(client, "ml", labels, 120)
    manifest = yaml.safe_load((REPO / "apps" / "autoscaling" / "inference-gpu.yaml").read_text())
    gpu = next(m for m in manifest["spec"]["metrics"] if m["type"] == "Pods")
    assert gpu["pods"]["metric"]["name"] == "gpu_utilization_percent"
    gpu["pods"]["target"]["averageValue"] = GPU_UTIL_TARGET
    apply_documents(client, [manifest])
    try:

        def read_idle() -> bool:
            hpa = client.get(HorizontalPodAutoscaler, "inference", namespace="ml")
            return hpa_metric(hpa, "gpu_utilization_percent") is not None

        wait_until("the HPA reading GPU utilisation", read_idle, 90)
        idle = hpa_metric(client.get(HorizontalPodAutoscaler, "inference", namespace="ml"),
                          "gpu_utilization_percent")  # fmt: skip
        TIMINGS["hpa_gpu_utilisation_idle_percent"] = idle or 0.0
        assert replicas_of(client) == 1
        pid = pid_running(b"gpuplane.inference.main")
        bench = ["nsenter", "-t", str(pid), "-n", sys.executable,
                 str(REPO / "bench" / "inference.py"), "--url", "http://127.0.0.1:8000",
                 "--seconds", "120", "--concurrency", "8", "--batch-sizes", "128",
                 "-o", str(OUT / "hpa-gpu-load.json")]  # fmt: skip
        step = time.monotonic()
        with (OUT / "hpa-gpu-load.log").open("wb") as log:
            load = subprocess.Popen(bench, stdout=log, stderr=subprocess.STDOUT)
        try:
            wait_until(
                "a second replica", lambda: replicas_of(client) >= 2, 110,
                explain=lambda: f"the HPA's status: {hpa_status(client)}",
            )  # fmt: skip
            TIMINGS["hpa_gpu_step_to_scale_out_seconds"] = round(time.monotonic() - step, 2)
            hpa = client.get(HorizontalPodAutoscaler, "inference", namespace="ml")
            loaded = hpa_metric(hpa, "gpu_utilization_percent")
            TIMINGS["hpa_gpu_utilisation_loaded_percent"] = loaded or 0.0
            assert loaded is not None and loaded > float(GPU_UTIL_TARGET), hpa.status
            wait_until("two Ready replicas", lambda: ready_of(client) >= 2, 90)
            TIMINGS["hpa_gpu_step_to_second_replica_ready_seconds"] = round(
                time.monotonic() - step, 2
            )
            pods = list(client.list(Pod, namespace="ml", labels=labels))
            assert {p.spec.nodeName for p in pods if p.spec} == {GPU_NODE}
        finally:
            load.terminate()
            load.wait(30)
        (OUT / "timings.json").write_text(json.dumps(TIMINGS, indent=2))
    finally:
        with contextlib.suppress(ApiError):
            client.delete(HorizontalPodAutoscaler, "inference", namespace="ml")
        code, out, err = cluster.run("autoscale", "down")
        assert code == 0, out + err


def hpa_status(client: Client) -> object:
    return client.get(HorizontalPodAutoscaler, "inference", namespace="ml").status


def replicas_of(client: Client) -> int:
    live = client.get(Deployment, "inference", namespace="ml")
    return (live.spec.replicas if live.spec else 0) or 0


def ready_of(client: Client) -> int:
    live = client.get(Deployment, "inference", namespace="ml")
    return (live.status.readyReplicas if live.status else 0) or 0


def test_down_leaves_nothing(cluster: Cluster) -> None:
    collect_logs(cluster)
    start = time.monotonic()
    code, out, err = cluster.run("down")
    timed("down_seconds", start)
    assert code == 0, out + err
    assert not KUBELET_ROOT.exists() and not NVIDIA_CDI_SPEC.exists()
    assert not PLUGIN_CDI_SPEC.exists()
    assert BRIDGE not in [name for _, name in socket.if_nameindex()]
    assert "/var/lib/kubelet" not in Path("/proc/self/mountinfo").read_text()


@pytest.mark.timeout(1500)  # up with services, three acts, three images of several GB
def test_the_demo_plays_on_the_real_gpu_node(tmp_path_factory: pytest.TempPathFactory) -> None:
    """`make demo`'s story with the gpu node real (after the cluster above is down: one
    kubelet node per host): `up` with Prometheus, the traffic simulator and the downscaler,
    then `sim demo`. Act one: the placeholder inference holds the real GPU, its GPU signal
    comes from gpu-exporter (NVML), it is scaled to zero, the training Job gets the freed
    GPU, the inference is restored. Act two: the real service on CUDA behind the activator,
    scaled to zero, 20 requests held and all answered. Act three: the chat model on CUDA
    (llama.cpp where the run brings its CUDA build, LLAMA_SITE; else transformers), scaled
    to zero, a streamed chat held, its first token timed, its GPU memory given back."""
    interpreter = torch_python()
    # A short state path: containerd's sockets live under it (104 characters at most).
    demo = Cluster(tmp_path_factory.mktemp("demo"), "e2e-demo")
    demo.write()
    start = time.monotonic()
    code, out, err = demo.run("up")
    timed("demo_up_with_services_seconds", start)
    try:
        assert code == 0, out + err
        start = time.monotonic()
        code, out, err = demo.run("sim", "demo", *interpreter)
        timed("demo_seconds", start)
        (OUT / "demo.txt").write_text(out + err)
        assert code == 0, out + err
        story = " ".join(out.split())
        assert f"node {GPU_NODE} (gpu): real kubelet node (containerd://" in story
        assert "GPU metrics of the real gpu node: gpu-exporter (NVML)" in story
        for step in (
            "llm-inference idle for idleFor -> scaled to 0",
            "gpu-training got the freed GPU",
            "llm-inference restored to 1 replica",
            "every dashboard panel now has data",
            "the zero-loss wake: the real service on agent-2",
            "wake: held 20, answered 20, lost 0",
            "the streamed wake: the chat model on agent-2",
            "a streamed chat through the activator: ",
            "llm scaled to 0",
            "wake: held 1, lost 0; first token",
            "llm back at 1 replica(s)",
            "chat act complete",
        ):
            assert step in story, out
        # The time to the first token after a wake from zero, on the GPU, into timings.json.
        first = re.search(r"held 1, lost 0; first token ([0-9.]+)s", story)
        assert first is not None, out
        TIMINGS["demo_chat_first_token_after_wake_seconds"] = float(first.group(1))
        # The GPU memory the chat model's pod held comes back when it is scaled to zero.
        memory = re.search(
            r"GPU memory \(gpu-exporter, NVML\): ([0-9,]+) MiB in use while serving, "
            r"([0-9,]+) MiB after the scale to zero",
            story,
        )
        assert memory is not None, out
        serving, after = (float(m.replace(",", "")) for m in memory.groups())
        assert after < serving, out
        TIMINGS["demo_chat_gpu_memory_returned_mib"] = serving - after
        (OUT / "timings.json").write_text(json.dumps(TIMINGS, indent=2))
    finally:
        collect_logs(demo, "demo-")
        code, out, err = demo.run("down")
        assert code == 0, out + err
