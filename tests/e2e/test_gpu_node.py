"""The real GPU node, end to end, on a host with an NVIDIA GPU (the GPU machine, through
`make e2e-gpu`): the local backend with its gpu node as a kubelet node. Covers: `up`
registers the node and the NVIDIA device plugin DaemonSet (image built offline,
RuntimeClass nvidia = the NVIDIA Container Runtime in CDI mode) advertises every GPU;
`verify` passes with no GPU check skipped and the smoke test's nvidia-smi names the GPU;
a GPU pod sees its GPU; a pod asking for more GPUs than the node has stays Pending;
time-slicing advertises N per GPU; `down` leaves nothing. Timings go to
$GPUPLANE_E2E_OUT/timings.json. Without a GPU: "not run: needs an NVIDIA GPU"."""

from __future__ import annotations

import io
import json
import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import pytest
import yaml
from lightkube import Client
from lightkube.resources.core_v1 import Node, Pod

from gpuplane.backends.local.kubelet.layout import BRIDGE, KUBELET_ROOT, NVIDIA_CDI_SPEC
from gpuplane.cli.main import main
from gpuplane.kube import connect
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


def platform_document(sharing: int | None = None) -> dict[str, Any]:
    """The repository's topology with its gpu node real, as this host's GPUs are."""
    document = yaml.safe_load((REPO / "platform.yaml").read_text())
    document["metadata"]["name"] = CLUSTER
    for node in document["spec"]["nodes"]:
        if node["name"] == GPU_NODE:
            node.update(
                runtime="kubelet", gpus=PROBE.gpus, gpuProduct=product_label(PROBE.names[0])
            )
            if sharing:
                node["gpuSharing"] = {"replicas": sharing}
    return document


class Cluster:
    def __init__(self, directory: Path) -> None:
        self.file = directory / "platform.yaml"
        self.env = {**os.environ, "GPUPLANE_STATE": str(directory / "state")}
        self.kubeconfig = directory / "state" / CLUSTER / "kubeconfig"

    def write(self, sharing: int | None = None) -> None:
        self.file.write_text(yaml.safe_dump(platform_document(sharing), sort_keys=False))

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


def collect_logs(cluster: Cluster) -> None:
    """Every process log of the cluster (control plane, containerd, kubelet), tails."""
    for log in sorted(cluster.kubeconfig.parent.rglob("*.log")):
        (OUT / f"{log.parent.name}-{log.name}").write_bytes(log.read_bytes()[-400_000:])


def gpu_allocatable(client: Client) -> int:
    return read_node(client.get(Node, GPU_NODE).to_dict()).gpus_allocatable


def test_the_device_plugin_advertises_every_gpu(cluster: Cluster) -> None:
    node = read_node(cluster.client.get(Node, GPU_NODE).to_dict())
    assert not node.simulated and node.runtime.startswith("containerd://")
    assert node.gpus_allocatable == PROBE.gpus
    assert node.labels["nvidia.com/gpu.product"] == product_label(PROBE.names[0])
    assert NVIDIA_CDI_SPEC.is_file()


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


def gpu_pod(name: str, gpus: int, command: list[str]) -> Pod:
    return Pod.from_dict(
        {
            "metadata": {"name": name, "namespace": "default"},
            "spec": {
                "restartPolicy": "Never",
                "runtimeClassName": "nvidia",
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


def test_a_gpu_pod_sees_its_gpu(cluster: Cluster) -> None:
    client = cluster.client
    start = time.monotonic()
    client.create(gpu_pod("sees-gpu", 1, ["/bin/sh", "-c", "nvidia-smi -L; nvidia-smi"]))
    deadline = time.monotonic() + 180
    phase = "Pending"
    while time.monotonic() < deadline and phase not in ("Succeeded", "Failed"):
        status = client.get(Pod, "sees-gpu", namespace="default").status
        phase = (status.phase if status else None) or "Pending"
        time.sleep(0.2)
    timed("gpu_pod_seconds", start)
    log = "\n".join(client.log("sees-gpu", namespace="default"))
    (OUT / "gpu-pod.log").write_text(log)
    assert phase == "Succeeded", log
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


def test_time_slicing_advertises_n_per_gpu(cluster: Cluster) -> None:
    cluster.write(sharing=4)
    start = time.monotonic()
    code, out, err = cluster.run("up", "--no-services")
    timed("time_slicing_seconds", start)
    assert code == 0, out + err
    assert gpu_allocatable(cluster.client) == 4 * PROBE.gpus


def test_down_leaves_nothing(cluster: Cluster) -> None:
    collect_logs(cluster)
    start = time.monotonic()
    code, out, err = cluster.run("down")
    timed("down_seconds", start)
    assert code == 0, out + err
    assert not KUBELET_ROOT.exists() and not NVIDIA_CDI_SPEC.exists()
    assert BRIDGE not in [name for _, name in socket.if_nameindex()]
    assert "/var/lib/kubelet" not in Path("/proc/self/mountinfo").read_text()
