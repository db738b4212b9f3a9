"""A real node on this host: the app node runs as the upstream kubelet with containerd,
runc and the CNI bridge. Covers: pods really run (a container's output read back through
the API server), an HTTP readiness probe the kubelet runs against the pod's IP, the
node's own credentials and NodeRestriction (403 on a node-role label), status saying
what is real, bad input (two kubelet nodes: exit 2; not root: exit 3, nothing started),
and `down` leaving no process, mount, cgroup, interface or directory behind."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2
import pytest
import yaml
from lightkube import Client
from lightkube.core.exceptions import ApiError
from lightkube.models.meta_v1 import ObjectMeta
from lightkube.resources.apps_v1 import DaemonSet, Deployment
from lightkube.resources.core_v1 import Namespace, Node, Pod

from gpuplane.backends.gpu_enablement import NAMESPACE, PLUGIN_DAEMONSET, apply_gpu_enablement
from gpuplane.backends.local.activator_service import start_activator, stop_activator
from gpuplane.backends.local.gitops.in_cluster_downscaler import NAMESPACE as OPERATOR_NAMESPACE
from gpuplane.backends.local.gitops.in_cluster_downscaler import SELECTOR as OPERATOR_SELECTOR
from gpuplane.backends.local.kubelet.host import processes_mentioning
from gpuplane.backends.local.kubelet.layout import BRIDGE, KUBELET_ROOT, PODS_CGROUP, NodeLayout
from gpuplane.backends.local.processes import pid_alive
from gpuplane.backends.local.state import LocalState
from gpuplane.backends.local.supervisor import Supervisor
from gpuplane.gpu_exporter.podresources import list_pod_resources
from gpuplane.kube import connect
from gpuplane.kube.apply import apply_files
from gpuplane.kube.client import http_client
from gpuplane.metrics_text import sample_sum
from gpuplane.observability.promql import finite_samples, instant_query
from gpuplane.simulation.wake_timeline import STEPS, WakeTimeline, service_phases
from gpuplane.toolchain.images import (
    ACTIVATOR_NAME,
    DOWNSCALER_NAME,
    GPU_EXPORTER_NAME,
    INFERENCE_NAME,
    TOOLBOX_NAME,
)
from gpuplane.topology import load_platform
from tests.integration.autoscale_kit import hpa, hpa_condition, load
from tests.integration.conftest import (
    CliResult,
    SimCluster,
    delete_namespace,
    run_cli,
    write_platform,
)
from tests.integration.downscaler_kit import deployment, policy, replicas, services, wait_for
from tests.integration.llm_kit import chat, stream_chat

REPO = Path(__file__).resolve().parents[2]
CLUSTER = "gpuplane-kubelet"
ACTIVATOR_RATE = 'sum by (deployment) (rate(gpuplane_activator_requests_total{namespace="ml"}[2m]))'
NODE = "agent-0"

RESTRICTED = {
    "allowPrivilegeEscalation": False,
    "capabilities": {"drop": ["ALL"]},
    "runAsNonRoot": True,
    "runAsUser": 65534,
    "seccompProfile": {"type": "RuntimeDefault"},
}


def kubelet_nodes(**app: Any) -> list[dict[str, object]]:
    document = yaml.safe_load((Path(__file__).resolve().parents[2] / "platform.yaml").read_text())
    nodes: list[dict[str, object]] = document["spec"]["nodes"]
    for node in nodes:
        node["runtime"] = "kwok"
        if node["name"] == NODE:
            node.update({"runtime": "kubelet", **app})
    return nodes


@pytest.fixture(scope="module")
def kubelet_cluster(
    tmp_path_factory: pytest.TempPathFactory, sim_env: dict[str, str]
) -> Iterator[SimCluster]:
    if os.geteuid() != 0:
        pytest.fail("the kubelet node tests need root (mounts, cgroups, the pod network)")
    platform_file = write_platform(tmp_path_factory.mktemp("kubelet"), CLUSTER, kubelet_nodes())
    up = run_cli(["-f", str(platform_file), "up"], sim_env)
    kubeconfig = Path(sim_env["GPUPLANE_STATE"]) / CLUSTER / "kubeconfig"
    cluster = SimCluster(platform_file, sim_env, kubeconfig, connect(kubeconfig))
    try:
        assert up.code == 0, f"gpuplane up failed:\n{up.stdout}\n{up.stderr}"
        yield cluster
    finally:
        logs = tmp_path_factory.mktemp("kubelet-logs")
        for log in sorted((Path(sim_env["GPUPLANE_STATE"]) / CLUSTER).rglob("*.log")):
            (logs / f"{log.parent.name}-{log.name}").write_bytes(log.read_bytes())
        cluster.cli("down")


def wait_pod(cluster: SimCluster, name: str, done: Any, timeout: float = 90.0) -> Pod:
    deadline = time.monotonic() + timeout
    while True:
        pod = cluster.client.get(Pod, name, namespace="default")
        if done(pod):
            return pod
        if time.monotonic() > deadline:
            raise AssertionError(f"pod {name}: {pod.status}")
        time.sleep(0.3)


def pod(name: str, command: list[str], **extra: Any) -> Pod:
    container = {
        "name": "main",
        "image": TOOLBOX_NAME,
        "imagePullPolicy": "Never",
        "command": command,
        "securityContext": RESTRICTED,
        **extra,
    }
    return Pod.from_dict(
        {
            "metadata": {"name": name, "namespace": "default"},
            "spec": {
                "nodeSelector": {"kubernetes.io/hostname": NODE},
                "restartPolicy": "Never",
                "automountServiceAccountToken": False,
                "containers": [container],
            },
        }
    )


def test_status_says_the_app_node_is_real(kubelet_cluster: SimCluster) -> None:
    status = kubelet_cluster.cli("status", "-o", "json")
    assert status.code == 0, status.stderr
    nodes = {n["name"]: n for n in yaml.safe_load(status.stdout)["nodes"]}
    assert nodes[NODE]["simulated"] is False
    assert nodes[NODE]["runtime"].startswith("containerd://2.")
    assert nodes[NODE]["ready"] is True
    assert nodes["agent-1"]["simulated"] is True and nodes["agent-1"]["runtime"] == "kwok"
    running = {c["name"]: c["running"] for c in yaml.safe_load(status.stdout)["components"]}
    assert running[f"kubelet ({NODE})"] and running[f"containerd ({NODE})"]
    node = kubelet_cluster.client.get(Node, NODE)
    assert node.metadata is not None and node.metadata.labels is not None
    # Bootstrap label from the kubelet, role label from the platform step.
    assert node.metadata.labels["gpuplane.io/role"] == "app"
    assert node.metadata.labels["node-role.kubernetes.io/app"] == "true"


def test_a_container_really_runs_and_its_output_comes_back(kubelet_cluster: SimCluster) -> None:
    kubelet_cluster.client.create(
        pod(
            "hello", ["/bin/sh", "-c", "echo hello from $(uname -s) as $(id -u); cat /etc/hostname"]
        )
    )
    done = wait_pod(
        kubelet_cluster, "hello", lambda p: p.status and p.status.phase in ("Succeeded", "Failed")
    )
    assert done.status is not None and done.status.phase == "Succeeded", done.status
    with http_client(kubelet_cluster.kubeconfig) as api:
        log = api.get("/api/v1/namespaces/default/pods/hello/log")
    assert log.status_code == 200, log.text
    assert log.text.splitlines() == ["hello from Linux as 65534", "hello"]
    kubelet_cluster.client.delete(Pod, "hello", namespace="default")


def test_the_kubelet_probes_a_real_server_on_the_pod_network(kubelet_cluster: SimCluster) -> None:
    server = pod(
        "web",
        ["/bin/sh", "-c", "mkdir -p /tmp/www && echo ok > /tmp/www/index.html && "
         "exec httpd -f -p 8080 -h /tmp/www"],
        readinessProbe={"httpGet": {"path": "/index.html", "port": 8080}, "periodSeconds": 1},
        ports=[{"containerPort": 8080}],
    )  # fmt: skip
    server.spec.restartPolicy = "Always"  # type: ignore[union-attr]
    kubelet_cluster.client.create(server)
    ready = wait_pod(
        kubelet_cluster,
        "web",
        lambda p: (
            any(c.type == "Ready" and c.status == "True" for c in (p.status.conditions or []))
            if p.status
            else False
        ),
    )
    assert ready.status is not None and ready.status.podIP
    assert ready.status.podIP.startswith("10.244.0.")
    # The host reaches the pod over the bridge, as the kubelet's probe did.
    with httpx2.Client(trust_env=False, timeout=5) as http:
        assert http.get(f"http://{ready.status.podIP}:8080/index.html").text == "ok\n"
    kubelet_cluster.client.delete(Pod, "web", namespace="default")


def test_node_restriction_applies_to_the_kubelets_own_credentials(
    kubelet_cluster: SimCluster,
) -> None:
    own = NodeLayout(kubelet_cluster.kubeconfig.parent, NODE).kubeconfig
    assert own.stat().st_mode & 0o777 == 0o600
    node_client = connect(own)
    label = {"metadata": {"labels": {"node-role.kubernetes.io/gpu": "true"}}}
    with pytest.raises(ApiError) as denied:
        node_client.patch(Node, NODE, label)
    assert denied.value.status.code == 403
    assert "node-role.kubernetes.io" in str(denied.value.status.message)
    # It may not touch another node at all.
    with pytest.raises(ApiError) as other:
        node_client.patch(Node, "agent-1", {"metadata": {"labels": {"x": "y"}}})
    assert other.value.status.code == 403


def test_image_build_and_load_into_the_node(kubelet_cluster: SimCluster, tmp_path: Path) -> None:
    built = kubelet_cluster.cli("image", "build", "-o", "json")
    assert built.code == 0, built.stderr
    images = {image["name"]: image for image in json.loads(built.stdout)}
    services = {"inference", "activator", "gpu-exporter", "downscaler"}
    assert set(images) == {"pause", "toolbox", *services}
    assert "registry.k8s.io/pause:3.10" in images["pause"]["names"]
    assert images["inference"]["names"] == [INFERENCE_NAME]
    assert images["downscaler"]["names"] == [DOWNSCALER_NAME]
    # `up` imported the platform's own; the first load adds gpuplane's services'...
    first = kubelet_cluster.cli("image", "load", "-o", "json")
    assert first.code == 0, first.stderr
    assert set(json.loads(first.stdout)[NODE]) == services
    # ...and a second load imports nothing.
    again = kubelet_cluster.cli("image", "load", "-o", "json")
    assert again.code == 0, again.stderr
    assert json.loads(again.stdout) == {NODE: []}
    broken = tmp_path / "not-an-image.tar"
    broken.write_bytes(b"junk")
    refused = kubelet_cluster.cli("image", "load", str(broken))
    assert refused.code == 2
    assert "not an OCI layout tar" in refused.stderr


def test_the_inference_service_runs_on_the_real_app_node(kubelet_cluster: SimCluster) -> None:
    """apps/inference applied as it is: the CPU variant runs for real on the kubelet app
    node (its image imported by `image load`), answers embeddings on its pod IP and says
    it runs on the CPU; the GPU variant goes to the gpu node, which is KWOK here."""
    client = kubelet_cluster.client
    loaded = kubelet_cluster.cli("image", "load", "-o", "json")
    assert loaded.code == 0, loaded.stderr
    apply_files(client, sorted((REPO / "apps" / "inference").rglob("*.yaml")))
    try:
        deadline = time.monotonic() + 180
        ready: list[Pod] = []
        while time.monotonic() < deadline and not ready:
            pods = client.list(Pod, namespace="ml", labels={"app.kubernetes.io/name": "inference"})
            ready = [p for p in pods if is_ready(p) and p.spec and p.spec.nodeName == NODE]
            time.sleep(0.5)
        assert ready, [(p.metadata.name, p.status) for p in pods]  # type: ignore[union-attr]
        placement = {
            (p.metadata.labels or {})["app.kubernetes.io/component"]: p.spec.nodeName
            for p in client.list(
                Pod, namespace="ml", labels={"app.kubernetes.io/name": "inference"}
            )
            if p.metadata and p.spec
        }
        assert placement == {"cpu": NODE, "gpu": "agent-2"}
        url = f"http://{ready[0].status.podIP}:8000"  # type: ignore[union-attr]
        with httpx2.Client(trust_env=False, timeout=30) as http:
            body = {"model": "all-MiniLM-L6-v2", "input": ["a GPU node", "a CPU node"]}
            answer = http.post(f"{url}/v1/embeddings", json=body)
            assert answer.status_code == 200, answer.text
            assert [len(item["embedding"]) for item in answer.json()["data"]] == [384, 384]
            metrics = http.get(f"{url}/metrics").text
        assert 'device="cpu"' in metrics
        # The kubelet's pod-resources API (what gpu-exporter attributes GPUs with) lists
        # the pod's container; a CPU pod holds no device.
        listed = list_pod_resources(KUBELET_ROOT / "pod-resources" / "kubelet.sock")
        (server,) = [c for c in listed if c.pod == ready[0].metadata.name]  # type: ignore[union-attr]
        assert (server.namespace, server.container, server.devices) == ("ml", "server", {})
        assert (
            'http_requests_total{code="200",deployment="inference-cpu",method="POST",namespace="ml"'
            in metrics
        )
    finally:
        delete_namespace(client, "ml")


@pytest.mark.parametrize(
    ("image", "service"),
    [
        (ACTIVATOR_NAME, "gpuplane.activator.main"),
        (GPU_EXPORTER_NAME, "gpuplane.gpu_exporter.main"),
    ],
)
def test_a_service_image_starts_its_entry_point_in_a_pod(
    kubelet_cluster: SimCluster, image: str, service: str
) -> None:
    """The images that do not run as pods elsewhere here (the activator needs the API
    server from inside the pod, the exporter NVML): their entry point imports its whole
    module tree in the container and answers --help."""
    loaded = kubelet_cluster.cli("image", "load", "-o", "json")
    assert loaded.code == 0, loaded.stderr
    name = f"help-{service.split('.')[1].replace('_', '-')}"
    kubelet_cluster.client.create(
        pod(name, [], image=image, imagePullPolicy="IfNotPresent", args=["--help"])
    )
    done = wait_pod(
        kubelet_cluster, name, lambda p: p.status and p.status.phase in ("Succeeded", "Failed")
    )
    log = "\n".join(kubelet_cluster.client.log(name, namespace="default"))
    kubelet_cluster.client.delete(Pod, name, namespace="default")
    assert done.status is not None and done.status.phase == "Succeeded", log
    assert "usage:" in log and "--help" in log, log


def is_ready(pod: Pod) -> bool:
    conditions = pod.status.conditions if pod.status else None
    return any(c.type == "Ready" and c.status == "True" for c in conditions or [])


def test_device_plugin_daemonset_skips_the_cpu_kubelet_node(kubelet_cluster: SimCluster) -> None:
    """The DaemonSet as `up` applies it on a kubelet gpu node (image built here): its pods
    go to the gpu node only, never to the real CPU node."""
    platform = load_platform(kubelet_cluster.platform_file)
    client = kubelet_cluster.client
    apply_gpu_enablement(client, REPO, platform, plugin_image="gpuplane.io/k8s-device-plugin:v0")
    try:
        deadline = time.monotonic() + 60
        placed: list[str] = []
        while time.monotonic() < deadline and not placed:
            pods = client.list(Pod, namespace=NAMESPACE)
            placed = [p.spec.nodeName for p in pods if p.spec and p.spec.nodeName]
            time.sleep(0.3)
        assert placed == ["agent-2"]
        daemonset = client.get(DaemonSet, PLUGIN_DAEMONSET, namespace=NAMESPACE)
        assert daemonset.status is not None and daemonset.status.desiredNumberScheduled == 1
        image = daemonset.spec.template.spec.containers[0].image  # type: ignore[union-attr]
        assert image == "gpuplane.io/k8s-device-plugin:v0"
    finally:
        client.delete(Namespace, NAMESPACE)


def test_two_kubelet_nodes_are_bad_input(tmp_path: Path, sim_env: dict[str, str]) -> None:
    nodes = kubelet_nodes()
    for node in nodes:
        if node["name"] == "agent-1":
            node["runtime"] = "kubelet"
    result = run_cli(["-f", str(write_platform(tmp_path, "two-kubelets", nodes)), "up"], sim_env)
    assert result.code == 2, result.stderr
    assert "node 'agent-1', field spec.nodes[2].runtime: at most one kubelet node per host" in (
        result.stderr.replace("\n", " ")
    )
    assert not (Path(sim_env["GPUPLANE_STATE"]) / "two-kubelets").exists()


def test_not_root_is_a_missing_prerequisite() -> None:
    # pytest's own temp root is private to root; this user must read the platform file.
    with tempfile.TemporaryDirectory(prefix="gpuplane-not-root-") as scratch:
        run_as_nobody(Path(scratch))


def run_as_nobody(scratch: Path) -> None:
    scratch.chmod(0o755)
    platform_file = write_platform(scratch, "not-root", kubelet_nodes())
    platform_file.chmod(0o644)
    state = scratch / "state"
    state.mkdir()
    os.chown(state, 65534, 65534)
    result = subprocess.run(
        [str(shutil.which("setpriv")), "--reuid=65534", "--regid=65534", "--clear-groups",
         str(Path(sys.executable).parent / "gpuplane"), "-f", str(platform_file), "up"],
        env={**os.environ, "GPUPLANE_STATE": str(state), "HOME": str(state)},
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert result.returncode == 3, result.stderr
    assert "kubelet node 'agent-0'" in result.stderr and "runs as root" in result.stderr
    assert not (state / "not-root").exists()


def test_the_hpa_adds_a_real_replica_that_serves(kubelet_cluster: SimCluster) -> None:
    """Autoscaling with real replicas: the CPU embeddings service on the kubelet node,
    scraped by Prometheus through its pod's annotations, read by the HPA controller through
    the Prometheus adapter; load through the activator on 127.0.0.1 (round robin over the
    ready pods) makes the HPA add a second real replica, which answers too; without load
    the HPA takes it away again. No request fails throughout."""
    client = kubelet_cluster.client
    loaded = kubelet_cluster.cli("image", "load")
    assert loaded.code == 0, loaded.stderr
    inference = REPO / "apps" / "inference"
    apply_files(client, [inference / "namespace.yaml", inference / "server-cpu.yaml"])
    apply_files(client, [inference / "service.yaml"])
    up = kubelet_cluster.cli("autoscale", "up")
    assert up.code == 0, up.stdout + up.stderr
    state = LocalState(Path(kubelet_cluster.env["GPUPLANE_STATE"]), CLUSTER)
    labels = {"app.kubernetes.io/name": "inference", "app.kubernetes.io/component": "cpu"}

    def ready_pods() -> list[Pod]:
        pods = client.list(Pod, namespace="ml", labels=labels)
        return [p for p in pods if is_ready(p) and p.spec and p.spec.nodeName == NODE]

    try:
        wait_for("the first replica Ready on the kubelet node", ready_pods, timeout=180)
        client.create(hpa("ml", target="inference-cpu", max_replicas=2))
        wait_for(
            "the HPA reading the pods' in-flight requests",
            lambda: (
                hpa_condition(client, "ml", "ScalingActive", "inference-cpu").get("status")
                == "True"
            ),
            timeout=120,
        )
        route = {
            "name": "embeddings", "namespace": "ml", "deployment": "inference-cpu",
            "service": "inference", "upstream": "endpoints:8000",
            "match": {"pathPrefix": "/hpa"}, "stripPrefix": True,
        }  # fmt: skip
        address = start_activator(state, client, [route], {})
        failures: list[int] = []
        with load(f"{address.url}/hpa", clients=6, failures=failures):
            two = wait_for("2 ready replicas", lambda: len(ready_pods()) == 2 and ready_pods(), 240)
            assert {p.spec.nodeName for p in two if p.spec} == {NODE}
            with httpx2.Client(trust_env=False, timeout=60) as http:

                def served(pod: Pod) -> bool:
                    url = f"http://{pod.status.podIP}:8000/metrics"  # type: ignore[union-attr]
                    return any(
                        line.startswith("http_requests_total{") and 'code="200"' in line
                        for line in http.get(url).text.splitlines()
                    )

                # The activator sends to a pod once its EndpointSlice says it is ready.
                for pod in two:
                    name = pod.metadata.name  # type: ignore[union-attr]
                    wait_for(f"{name} answering its share", lambda pod=pod: served(pod), 60)
        wait_for(
            "back to 1 replica without load",
            lambda: replicas(client, "ml", "inference-cpu") == 1,
            timeout=120,
        )
        assert failures == []
    finally:
        stop_activator(state)
        kubelet_cluster.cli("autoscale", "down")
        delete_namespace(client, "ml")


def test_a_chat_held_at_zero_wakes_the_real_llm_and_streams_token_by_token(
    kubelet_cluster: SimCluster,
) -> None:
    """apps/llm's CPU variant (llama.cpp) as it is, on the kubelet node, behind the
    activator. Scaled to zero as the downscaler does (ledger and replicas in one write), a
    streamed chat request through the activator is held; the downscaler restores the
    ledger's count on the activator's wake request, the new pod turns Ready after its
    warm-up, and the answer streams through the activator event by event (spread over
    the generation, not in one piece at the end), ending in [DONE]. Nothing is lost."""
    client = kubelet_cluster.client
    built = kubelet_cluster.cli("image", "build", "--service", "llm", "-o", "json")
    assert built.code == 0, built.stderr
    (image,) = json.loads(built.stdout)
    loaded = kubelet_cluster.cli("image", "load", image["file"])
    assert loaded.code == 0, loaded.stderr
    llm = REPO / "apps" / "llm"
    apply_files(client, [llm / "namespace.yaml", llm / "server-cpu.yaml", llm / "service.yaml"])
    labels = {"app.kubernetes.io/name": "llm", "app.kubernetes.io/component": "cpu"}
    state = LocalState(Path(kubelet_cluster.env["GPUPLANE_STATE"]), CLUSTER)

    def pods() -> list[Pod]:
        return list(client.list(Pod, namespace="ml", labels=labels))

    try:
        wait_for("the llm pod Ready on the kubelet node", lambda: any(map(is_ready, pods())), 180)
        # Only a wake request may restore it: the policy's own idle window is an hour.
        signal = {"name": "requests", "idleBelow": 0.05, "query": ACTIVATOR_RATE}
        selector = {"matchLabels": {"app.kubernetes.io/part-of": "llm"}}
        hold = {"action": "Hold", "after": "1m"}
        client.create(policy("ml", "llm-idle", idleFor="1h", signals=[signal],
                             selector=selector, onMetricsLoss=hold, wake=None))  # fmt: skip
        ledger = {"metadata": {"annotations": {"gpuplane.io/original-replicas": "1"}},
                  "spec": {"replicas": 0}}  # fmt: skip
        client.patch(Deployment, "llm-cpu", ledger, namespace="ml")
        wait_for("the llm pod gone", lambda: not pods(), 120)
        route = {
            "name": "llm", "namespace": "ml", "deployment": "llm-cpu", "service": "llm",
            "upstream": "endpoints:8000", "probePath": "/readyz",
            "match": {"pathPrefix": "/ml/llm/"}, "stripPrefix": True,
        }  # fmt: skip
        address = start_activator(state, client, [route], {})
        timeline = WakeTimeline(client, "ml", "llm-cpu", labels)
        timeline.start()
        answer = stream_chat(f"{address.url}/ml/llm", chat(max_tokens=64), timeout=240)
        steps = timeline.stop()
        assert answer.status == 200, answer.body
        arrivals = answer.content_arrivals()
        (woken,) = [p.metadata.name for p in pods() if p.metadata and p.metadata.name]
        print(f"first token after a wake from zero: {arrivals[0]:.2f}s; "
              f"{len(arrivals)} tokens over {arrivals[-1] - arrivals[0]:.2f}s")  # fmt: skip
        # The phases inside that figure (pytest -rP shows them): seen from outside, then
        # the service's own start-up line.
        print(f"wake steps, seconds from the request: {steps}, first_token={arrivals[0]:.3f}")
        print("the service: " + service_phases("\n".join(client.log(woken, namespace="ml"))))
        # Every step seen; the pod's in the order they happen (the Deployment is read by
        # another call, so its restore may be seen a poll after the pod it caused).
        assert set(steps) == set(STEPS), steps
        assert [s for s in steps if s != "restored"] == [s for s in STEPS if s != "restored"]
        assert answer.done and len(arrivals) >= 20, answer
        # Event by event: the tokens reached the client over the generation's time.
        assert arrivals[-1] - arrivals[0] >= 0.2, arrivals
        assert len({round(at, 3) for at in arrivals}) >= 10, arrivals
        assert answer.events[0]["choices"][0]["delta"]["role"] == "assistant"
        assert replicas(client, "ml", "llm-cpu") == 1
        with httpx2.Client(trust_env=False, timeout=10) as http:
            exported = http.get(f"{address.metrics_url}/metrics").text
        assert sample_sum(exported, "gpuplane_activator_lost_requests_total") == 0
        assert sample_sum(exported, "gpuplane_activator_hold_seconds_count", namespace="ml") == 1
        # 1 where the activator's own probe found the pod ready before Kubernetes listed it
        # (most wakes), 0 where the kubelet's probe won; both are correct.
        probed = sample_sum(exported, "gpuplane_activator_probed_ready_total")
        print(f"found ready by the activator's probe before Kubernetes: {probed:.0f}")
    finally:
        stop_activator(state)
        delete_namespace(client, "ml")


def test_the_demo_wakes_the_real_service_through_the_activator_losing_nothing(
    kubelet_cluster: SimCluster,
) -> None:
    """`sim demo --chat` where the app node is real: after the KWOK GPU story, the real
    embeddings service runs on the kubelet node behind the activator, is scaled to zero on
    the activator's counter, and 20 requests that arrive at zero are held, wake it through
    the annotation (restore cause "request", not the Prometheus query) and are all answered.
    Then the chat model (llama.cpp's CPU image) plays the same there with one streamed chat,
    held at zero and streamed after the wake, its first token timed by phase."""
    client = kubelet_cluster.client
    demo = kubelet_cluster.cli("sim", "demo", "--chat")
    assert demo.code == 0, demo.stdout + demo.stderr
    out = demo.stdout
    print(out)  # the story's timings, in the report of a passing run (pytest -rP)
    act_two = out[out.index("the zero-loss wake") : out.index("the streamed wake")]
    act_three = out[out.index("the streamed wake") :]
    assert "story complete" in out[: out.index("the zero-loss wake")]
    for step in (
        f"starts on {NODE}, a kubelet node",
        "10 requests through the activator, all answered",
        "inference-cpu scaled to 0",
        "20 requests arrive at zero",
        "held 20, answered 20, lost 0",
        "inference-cpu back at 1 replica(s)",
        "wake act complete",
    ):
        assert step in act_two, out
    for step in (
        f"the chat model (apps/llm) starts on {NODE}",
        "a streamed chat through the activator: ",
        "llm-cpu scaled to 0",
        "a streamed chat arrives at zero",
        "wake: held 1, lost 0; first token",
        "llm-cpu back at 1 replica(s)",
        "the wake's steps, seconds from the chat: restored",
        "the service's start: ",
        "chat act complete",
    ):
        assert step in act_three, out
    assert "not logged" not in act_three, out
    supervised = services(kubelet_cluster.env, CLUSTER)
    ports = supervised.ports()
    assert ports is not None
    restores = instant_query(
        ports.prometheus_url, 'sum(gpuplane_downscaler_restores_total{cause="request"})'
    )
    assert finite_samples(restores) == 1 and float(restores["result"][0]["value"][1]) >= 1
    # The act cleans up after itself: no activator left, its policy and Deployment gone.
    assert supervised.pid("activator") is None and not supervised.running("activator")
    assert not (supervised.targets_dir / "activator.json").exists()
    for name in ("inference", "llm"):
        left = client.list(Deployment, namespace="ml", labels={"app.kubernetes.io/name": name})
        assert list(left) == [], name


def test_an_auto_platform_beside_a_real_node_stays_kwok_and_says_why(
    kubelet_cluster: SimCluster, tmp_path: Path
) -> None:
    """The default platform.yaml (runtime: auto) brought up while another cluster's kubelet
    node holds this host: every auto node resolves to KWOK, with that reason, and the two
    clusters run side by side. (Before test_down_leaves_nothing_behind: the real node must
    still be up.)"""
    document = yaml.safe_load((Path(__file__).resolve().parents[2] / "platform.yaml").read_text())
    document["metadata"]["name"] = "gpuplane-auto-beside"
    file = tmp_path / "auto.yaml"
    file.write_text(yaml.safe_dump(document))
    beside = SimCluster(file, kubelet_cluster.env, Path(), kubelet_cluster.client)
    holder = str(Path(kubelet_cluster.env["GPUPLANE_STATE"]) / CLUSTER)
    reason = f"this host's kubelet root is held by {holder} (one kubelet node per host)"
    try:
        up = beside.cli("up")
        assert up.code == 0, up.stdout + up.stderr
        assert f"runtime auto -> kwok for agent-0, agent-2: {reason}" in up.stdout
        status = beside.cli("status", "-o", "json")
        document = json.loads(status.stdout)
        assert all(node["simulated"] for node in document["nodes"])
        autos = {r["node"]: r for r in document["runtimes"] if r["declared"] == "auto"}
        assert {r["runtime"] for r in autos.values()} == {"kwok"}
        assert autos["agent-0"]["reason"] == reason
        # The real node is untouched.
        again = kubelet_cluster.cli("status", "-o", "json")
        nodes = {n["name"]: n for n in json.loads(again.stdout)["nodes"]}
        assert nodes[NODE]["simulated"] is False and nodes[NODE]["ready"] is True
    finally:
        assert beside.cli("down").code == 0


def test_argocd_delivers_the_downscaler_to_the_real_node_and_it_acts_alone(
    kubelet_cluster: SimCluster, tmp_path: Path
) -> None:
    """gitops up on a platform with a kubelet node: charts/downscaler's pod, from the
    offline image, runs on that node and reaches the API server and Prometheus through the
    pod gateway; the host-process operator is stopped (one operator); the pod scales an idle
    Deployment to zero. gitops down hands the work back to the host process."""
    client = kubelet_cluster.client
    repo = tmp_path / "repo"
    git = shutil.which("git") or "git"
    subprocess.run([git, "clone", "-q", str(REPO), str(repo)], check=True, timeout=120)
    state = LocalState(kubelet_cluster.kubeconfig.parent.parent, CLUSTER)
    host_operator = Supervisor(state.directory / "services")
    assert host_operator.pid("downscaler") is not None
    try:
        up = kubelet_cluster.cli("gitops", "up", "--repo", str(repo), "--wait", "300")
        assert up.code == 0, up.stdout + up.stderr
        assert "host-process downscaler stopped" in up.stderr
        assert host_operator.pid("downscaler") is None
        (operator,) = operator_pods(client)
        assert operator.spec is not None and operator.spec.nodeName == NODE
        assert operator.spec.containers[0].image == DOWNSCALER_NAME
        status = json.loads(kubelet_cluster.cli("status", "-o", "json").stdout)
        (component,) = [c for c in status["components"] if c["name"] == "downscaler"]
        assert component["running"] is True and f"on kubelet node {NODE}" in component["detail"]

        # As after a restart: the gateway is gone; `up` brings it back, the host process
        # stays stopped (the pod acts), and what follows goes through the new gateway.
        gateway = Supervisor(state.directory / "gitops")
        gateway.stop(("pod-gateway",))
        again = kubelet_cluster.cli("up")
        assert again.code == 0, again.stderr
        assert "pod-gateway started" in again.stdout + again.stderr
        assert host_operator.pid("downscaler") is None

        client.create(Namespace(metadata=ObjectMeta(name="handoff")))
        client.create(deployment("handoff", "idle-app", 2))
        # A series per target carries its deployment label (the policy's targetLabel).
        zero = 'label_replace(vector(0), "deployment", "idle-app", "", "")'
        idle = {"name": "always-idle", "query": zero, "idleBelow": 0.5}
        client.create(policy("handoff", signals=[idle], wake={"query": zero, "above": 1}))
        scaled = lambda: replicas(client, "handoff", "idle-app") == 0  # noqa: E731
        try:
            wait_for("the pod's operator scales to zero", scaled, 90)
        except AssertionError as error:
            name = operator.metadata.name if operator.metadata else ""
            log = "\n".join(client.log(str(name), namespace="gpuplane-system"))
            raise AssertionError(f"{error}\nthe operator's log:\n{log[-6000:]}") from error
        lease = http_client(kubelet_cluster.kubeconfig).get(
            "/apis/coordination.k8s.io/v1/namespaces/gpuplane-system/leases/gpuplane-downscaler"
        )
        holder = lease.json()["spec"]["holderIdentity"]
        assert operator.metadata is not None and holder.startswith(str(operator.metadata.name))
    finally:
        down = kubelet_cluster.cli("gitops", "down")
        delete_namespace(client, "handoff")
    assert down.code == 0, down.stderr
    assert host_operator.pid("downscaler") is not None
    wait_for("the operator's pod gone", lambda: not operator_pods(client), 60)


def operator_pods(client: Client) -> list[Pod]:
    return list(client.list(Pod, namespace=OPERATOR_NAMESPACE, labels=OPERATOR_SELECTOR))


def test_down_leaves_nothing_behind(kubelet_cluster: SimCluster) -> None:
    layout = NodeLayout(kubelet_cluster.kubeconfig.parent, NODE)
    processes = Supervisor(layout.supervised)
    pids = [processes.pid(name) for name in ("kubelet", "containerd")]
    assert all(pid is not None and pid_alive(pid) for pid in pids)
    kubelet_cluster.client.create(pod("sleeper", ["/bin/sleep", "3600"]))
    wait_pod(kubelet_cluster, "sleeper", lambda p: p.status and p.status.phase == "Running")
    down: CliResult = kubelet_cluster.cli("down")
    assert down.code == 0, down.stderr
    assert not any(pid_alive(pid) for pid in pids if pid is not None)
    assert processes_mentioning(str(layout.containerd_socket)) == []
    mounts = Path("/proc/self/mountinfo").read_text()
    assert str(KUBELET_ROOT) not in mounts and str(layout.root) not in mounts
    assert BRIDGE not in [name for _, name in socket.if_nameindex()]
    assert not list(Path("/sys/fs/cgroup").glob(f"*/{PODS_CGROUP}"))
    assert not KUBELET_ROOT.exists() and not layout.root.exists()


def test_a_state_directory_too_deep_for_containerds_socket_is_bad_input(
    tmp_path: Path, sim_env: dict[str, str]
) -> None:
    """containerd cannot listen on a unix socket path over 104 characters: `up` says so and
    names the way out before it builds or starts anything, instead of containerd dying."""
    deep = tmp_path / ("d" * 60)
    env = {**sim_env, "GPUPLANE_STATE": str(deep)}
    result = run_cli(
        ["-f", str(write_platform(tmp_path, "socket-depth", kubelet_nodes())), "up"], env
    )
    assert result.code == 2, result.stderr
    message = " ".join(result.stderr.split())
    assert "containerd socket" in message and "over the 104" in message
    assert "GPUPLANE_STATE" in message
    assert not deep.exists()
