"""The CLI's lifecycle verbs against real clusters.

Covers: a second ``up`` is idempotent (same processes, "nothing changed"); a drifted
node (taint removed) is repaired by ``up``; ``status -o json``; ``kubeconfig`` prints
the 0600 file; ``down`` leaves no process and no listening port; a broken platform.yaml
exits 2 and creates nothing; ``kubeconfig`` of a cluster that is not up exits 3;
``toolchain status`` lists every component as built.
"""

from __future__ import annotations

import json
import ssl
from pathlib import Path

import httpx2
import pytest
from lightkube.resources.core_v1 import Node
from lightkube.types import PatchType

from gpuplane.backends.local.processes import pid_alive, running_pids
from gpuplane.backends.local.services import SERVICES, Services
from gpuplane.backends.local.state import LocalState
from tests.integration.conftest import SimCluster, run_cli, write_platform

pytestmark = pytest.mark.integration


def socket_inodes(pid: int) -> set[str]:
    inodes = set()
    try:
        fds = list(Path(f"/proc/{pid}/fd").iterdir())
    except OSError:
        return inodes
    for fd in fds:
        try:
            target = str(fd.readlink())
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[len("socket:[") : -1])
    return inodes


def listening_sockets() -> dict[str, int]:
    """inode -> port of every TCP socket in LISTEN state (from /proc, no tools needed)."""
    sockets = {}
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] == "0A":  # LISTEN
                sockets[fields[9]] = int(fields[1].rsplit(":", 1)[1], 16)
    return sockets


def listening_ports(pids: list[int]) -> set[int]:
    listening = listening_sockets()
    return {listening[inode] for pid in pids for inode in socket_inodes(pid) if inode in listening}


def all_pids() -> list[int]:
    return [int(entry.name) for entry in Path("/proc").iterdir() if entry.name.isdigit()]


def processes_mentioning(text: str) -> list[int]:
    """Pids whose command line contains ``text`` (leftovers of a deleted cluster)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            except OSError:
                continue
            if text in cmdline:
                found.append(int(entry.name))
    return found


ON_DEMAND_COMPONENTS = (
    "kubelet", "containerd", "containerd-shim-runc-v2", "ctr", "runc", "bridge", "host-local",
    "loopback", "nvidia-ctk", "nvidia-cdi-hook", "nvidia-container-runtime",
    "nvidia-device-plugin", "kube-multicall",
)  # fmt: skip


def test_second_up_changes_nothing(sim_cluster: SimCluster) -> None:
    state = LocalState(Path(sim_cluster.env["GPUPLANE_STATE"]), "gpuplane-it")
    before = sorted(running_pids(state))
    result = sim_cluster.cli("up")
    assert result.code == 0, result.stderr
    assert "is already up and matches" in result.stdout
    assert "nothing changed" in result.stdout
    assert sorted(running_pids(state)) == before


def test_up_repairs_a_removed_taint(sim_cluster: SimCluster) -> None:
    client = sim_cluster.client
    client.patch(Node, "agent-1", {"spec": {"taints": []}}, patch_type=PatchType.MERGE)
    result = sim_cluster.cli("up")
    assert result.code == 0, result.stderr
    assert "node agent-1 repaired (taints)" in result.stdout
    live = client.get(Node, "agent-1")
    assert live.spec is not None
    assert [(t.key, t.value, t.effect) for t in live.spec.taints or []] == [
        ("node-role.kubernetes.io/infra", "true", "NoSchedule")
    ]


def test_every_private_key_is_the_owners_alone(sim_cluster: SimCluster) -> None:
    state = LocalState(Path(sim_cluster.env["GPUPLANE_STATE"]), "gpuplane-it")
    keys = sorted(state.directory.rglob("*.key"))
    assert {key.name for key in keys} >= {"ca.key", "admin.key"}
    modes = {key.name: key.stat().st_mode & 0o777 for key in keys}
    assert set(modes.values()) == {0o600}, modes


def test_status_json_and_kubeconfig(sim_cluster: SimCluster) -> None:
    result = sim_cluster.cli("status", "-o", "json")
    assert result.code == 0, result.stderr
    status = json.loads(result.stdout)
    assert status["running"] is True
    assert status["backend"] == "local"
    roles = {node["name"]: (node["role"], node["gpus_allocatable"]) for node in status["nodes"]}
    assert roles == {
        "server-0": ("control-plane", 0),
        "agent-0": ("app", 0),
        "agent-1": ("infra", 0),
        "agent-2": ("gpu", 1),
    }
    assert all(node["ready"] and node["simulated"] for node in status["nodes"])
    assert {c["name"]: c["running"] for c in status["components"]} == {
        "etcd": True,
        "kube-apiserver": True,
        "kube-controller-manager": True,
        "kube-scheduler": True,
        "kwok-controller": True,
        "prometheus": True,
        "traffic": True,
        "downscaler": True,
    }
    assert any("KWOK" in note for note in status["simulated"])

    printed = sim_cluster.cli("kubeconfig")
    assert printed.code == 0
    assert Path(printed.stdout.strip()) == sim_cluster.kubeconfig


def test_down_leaves_no_process_and_no_port(tmp_path: Path, sim_env: dict[str, str]) -> None:
    file = write_platform(tmp_path, "gpuplane-down")
    assert run_cli(["-f", str(file), "up"], sim_env).code == 0
    state = LocalState(Path(sim_env["GPUPLANE_STATE"]), "gpuplane-down")
    services = Services(state)
    pids = running_pids(state) + [services.pid(name) or 0 for name in SERVICES]
    assert len(pids) == 8 and all(pid_alive(pid) for pid in pids)
    ports = listening_ports(pids)
    assert ports, "the control plane should listen somewhere"

    result = run_cli(["-f", str(file), "down"], sim_env)
    assert result.code == 0, result.stderr
    assert "deleted" in result.stdout
    assert not state.directory.exists()
    for pid in pids:
        assert (
            not Path(f"/proc/{pid}").exists() or "zombie" in Path(f"/proc/{pid}/status").read_text()
        )
    leftovers = processes_mentioning(str(state.directory))
    assert leftovers == []
    # A freed port may be taken at once by another cluster on this machine; what must
    # not happen is that a process of this cluster still holds one.
    holders = [pid for pid in all_pids() if listening_ports([pid]) & ports]
    assert not [pid for pid in holders if pid in pids or pid in leftovers]

    again = run_cli(["-f", str(file), "down"], sim_env)
    assert again.code == 0
    assert "does not exist" in again.stdout


def test_broken_platform_exits_2_and_creates_nothing(
    tmp_path: Path, sim_env: dict[str, str]
) -> None:
    file = write_platform(tmp_path, "gpuplane-broken", nodes=[{"name": "agent-0", "role": "app"}])
    result = run_cli(["-f", str(file), "up"], sim_env)
    assert result.code == 2
    assert "exactly one control-plane node is required, found 0" in result.stderr
    assert not (Path(sim_env["GPUPLANE_STATE"]) / "gpuplane-broken").exists()


def test_kubeconfig_of_a_cluster_that_is_not_up_exits_3(
    tmp_path: Path, sim_env: dict[str, str]
) -> None:
    file = write_platform(tmp_path, "gpuplane-absent")
    result = run_cli(["-f", str(file), "kubeconfig"], sim_env)
    assert result.code == 3
    assert "is not up" in result.stderr
    status = run_cli(["-f", str(file), "status"], sim_env)
    assert status.code == 1
    assert "not running" in status.stdout


def test_toolchain_status_lists_every_component(sim_cluster: SimCluster) -> None:
    result = sim_cluster.cli("toolchain", "status", "-o", "json")
    assert result.code == 0, result.stderr
    rows = {row["name"]: row for row in json.loads(result.stdout)}
    assert sorted(rows) == sorted(
        [
            "etcd",
            "helm",
            "kube-apiserver",
            "kube-controller-manager",
            "kube-scheduler",
            "kubectl",
            "kwok",
            "kwokctl",
            "tofu",
            "terraform-provider-kubectl",
            "argocd",
            "prometheus-adapter",
            *ON_DEMAND_COMPONENTS,
        ]
    )
    on_demand = {
        "tofu",
        "terraform-provider-kubectl",
        "argocd",
        "prometheus-adapter",
        *ON_DEMAND_COMPONENTS,
    }
    required = [row for name, row in rows.items() if name not in on_demand]
    assert all(row["state"] == "built" and Path(row["path"]).is_file() for row in required)
    # OpenTofu is built only for hosts without terraform (or by the OpenTofu tests); the
    # kubectl provider on first use of the Terraform flow; Argo CD on first `gitops up`; the
    # Prometheus adapter on first `autoscale up`;
    # the node components for a platform with a kubelet node (or by its tests).
    assert all(rows[name]["state"] in ("built", "optional") for name in on_demand)


def test_etcd_answers_only_the_api_servers_certificate(sim_cluster: SimCluster) -> None:
    """etcd listens on 127.0.0.1 with TLS and client authentication: plain HTTP, TLS
    without a certificate and the cluster admin's certificate are all refused; the API
    server's own etcd client certificate is the one way in."""
    state = LocalState(Path(sim_cluster.env["GPUPLANE_STATE"]), "gpuplane-it")
    pki = state.directory / "etcd-pki"
    port = json.loads((pki / "ports.json").read_text())["client"]

    def version(context: ssl.SSLContext | None) -> str:
        scheme = "https" if context is not None else "http"
        url = f"{scheme}://127.0.0.1:{port}/version"
        return httpx2.get(url, verify=context or True, timeout=5, trust_env=False).text

    def trusting(cert: Path | None = None, key: Path | None = None) -> ssl.SSLContext:
        context = ssl.create_default_context(cafile=str(pki / "ca.crt"))
        if cert is not None:
            context.load_cert_chain(str(cert), str(key))
        return context

    admin = state.pki
    for refused in (
        None,
        trusting(),
        trusting(admin / "admin.crt", admin / "admin.key"),
    ):
        with pytest.raises((OSError, ssl.SSLError, httpx2.HTTPError)):
            version(refused)
    answer = version(trusting(pki / "apiserver-etcd-client.crt", pki / "apiserver-etcd-client.key"))
    assert '"etcdserver"' in answer
    assert {key.name: key.stat().st_mode & 0o777 for key in pki.glob("*.key")} == {
        "etcd.key": 0o600,
        "apiserver-etcd-client.key": 0o600,
    }
    assert not (pki / "ca.key").exists()  # the etcd CA signs nothing more: no key kept
