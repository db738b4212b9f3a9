"""One kubelet node: containerd and the kubelet under a supervisor, with the platform's
images imported; ``down`` undoes all of it (processes, pods, mounts, cgroups, bridge).

``up`` = host checks -> configs and credentials -> containerd -> images -> kubelet (which
registers the Node itself). Each step converges, so a second ``up`` changes nothing.
"""

from __future__ import annotations

import datetime
import json
import os
import shutil
import time
from collections.abc import Callable
from pathlib import Path

import yaml

from gpuplane.backends.base import ComponentStatus, Reporter
from gpuplane.backends.local.kubelet.credentials import write_node_credentials
from gpuplane.backends.local.kubelet.host import (
    delete_link,
    kill_cgroup_processes,
    node_address,
    processes_mentioning,
    remove_cgroups,
    unmount_under,
)
from gpuplane.backends.local.kubelet.layout import (
    BRIDGE,
    KUBELET_ROOT,
    NVIDIA_CDI_SPEC,
    PLUGIN_CDI_SPEC,
    PODS_CGROUP,
    NodeLayout,
)
from gpuplane.backends.local.kubelet.node_config import (
    NodeBinaries,
    cni_network,
    containerd_config,
    kubelet_args,
    kubelet_configuration,
    nvidia_runtime_config,
)
from gpuplane.backends.local.processes import terminate
from gpuplane.backends.local.supervisor import Supervisor
from gpuplane.commands import run_command
from gpuplane.errors import BadInputError, OperationError, PrerequisiteError
from gpuplane.toolchain.images import BuiltImage
from gpuplane.topology import Node

PROCESSES = ("kubelet", "containerd")
# containerd refuses a unix socket path longer than this (the portable sun_path size), and
# its longest is the ttrpc socket beside the main one.
MAX_SOCKET_PATH = 104
TTRPC_SUFFIX = ".ttrpc"
# Who owns /var/lib/kubelet: written by `up`, so a second cluster refuses to share it.
OWNER_FILE = ".gpuplane-owner"


def kubelet_root_owner(root: Path = KUBELET_ROOT) -> str | None:
    """Who uses this host's kubelet root: None while it is absent or empty, or while the
    gpuplane cluster that wrote its owner file runs no kubelet node any more (a killed
    run's leftovers: ``stale_kubelet_root_owner`` names it and ``up`` clears it); else that
    cluster's state directory ("another kubelet" when no gpuplane cluster wrote it)."""
    owner = _written_owner(root)
    if owner is None or owner.startswith("another kubelet"):
        return owner
    return owner if kubelet_node_running(Path(owner)) else None


def stale_kubelet_root_owner(root: Path = KUBELET_ROOT) -> str | None:
    """The gpuplane cluster whose owner file is still on this host's kubelet root although
    none of its kubelet nodes runs (it was killed, or the machine restarted under it)."""
    owner = _written_owner(root)
    if owner is None or owner.startswith("another kubelet"):
        return None
    return None if kubelet_node_running(Path(owner)) else owner


def kubelet_node_running(cluster_dir: Path) -> bool:
    """Whether a kubelet or containerd of this cluster's kubelet nodes still runs (by its
    supervisor's pid file: pid and start time, so a reused pid does not count)."""
    return any(
        Supervisor(processes).running(name)
        for processes in cluster_dir.glob(f"node-*/{NodeLayout.PROCESSES_DIR}")
        for name in PROCESSES
    )


def _written_owner(root: Path) -> str | None:
    try:
        if not root.is_dir() or not any(root.iterdir()):
            return None
        owner_file = root / OWNER_FILE
        return owner_file.read_text().strip() if owner_file.is_file() else "another kubelet"
    except OSError:
        return "another kubelet (its root cannot be read)"


def clear_kubelet_root() -> list[str]:
    """Remove this host's kubelet root and what pods left under it (their processes,
    mounts and cgroups); return what could not be removed."""
    kill_cgroup_processes(PODS_CGROUP)
    left = [str(p) for p in unmount_under((KUBELET_ROOT,))]
    left += [str(p) for p in remove_cgroups(PODS_CGROUP)]
    shutil.rmtree(KUBELET_ROOT, ignore_errors=True)
    return left


class KubeletNode:
    def __init__(
        self, cluster_dir: Path, node: Node, *, ca_dir: Path, admin_kubeconfig: Path
    ) -> None:
        self.node = node
        self.layout = NodeLayout(cluster_dir, node.name)
        self.ca_dir = ca_dir
        self.admin_kubeconfig = admin_kubeconfig
        self.processes = Supervisor(self.layout.supervised)
        self.owner = str(cluster_dir)

    # -- up ---------------------------------------------------------------------------

    def check_host(self) -> None:
        """BadInputError when the cluster's state directory is too deep for containerd's
        sockets; PrerequisiteError when another cluster's kubelet holds this host's kubelet
        root (the host's own prerequisites are checked by doctor before ``up`` starts)."""
        socket = f"{self.layout.containerd_socket}{TTRPC_SUFFIX}"
        if len(socket) > MAX_SOCKET_PATH:
            raise BadInputError(
                f"kubelet node {self.node.name!r}: its containerd socket {socket} is "
                f"{len(socket)} characters, over the {MAX_SOCKET_PATH} a unix socket path may "
                f"have; use a shorter state directory (GPUPLANE_STATE) or cluster name"
            )
        owner = kubelet_root_owner()
        if owner is not None and owner != self.owner:
            raise PrerequisiteError(
                f"kubelet node {self.node.name!r}: {KUBELET_ROOT} is in use by {owner} "
                "(one kubelet node per host; gpuplane down that cluster first)"
            )

    def up(self, binaries: NodeBinaries, images: list[BuiltImage], reporter: Reporter) -> list[str]:
        """Configs, containerd, images, kubelet; ``check_host`` has run (the backend runs it
        before anything is built)."""
        changes: list[str] = []
        node_ip = node_address(exclude=(BRIDGE,))
        self._write_configs(binaries, node_ip)
        stale = stale_kubelet_root_owner()
        if stale is not None:
            reporter.step(
                f"node {self.node.name}: {KUBELET_ROOT} was left by {stale}, whose kubelet "
                "no longer runs: clearing it"
            )
            left = clear_kubelet_root()
            if left:
                raise OperationError(
                    f"kubelet node {self.node.name!r}: could not clear what {stale} left: "
                    + ", ".join(left)
                )
            changes.append(f"node {self.node.name}: cleared {KUBELET_ROOT} left by {stale}")
        KUBELET_ROOT.mkdir(parents=True, exist_ok=True)
        (KUBELET_ROOT / OWNER_FILE).write_text(self.owner)
        if not self.processes.running("containerd"):
            reporter.step(f"node {self.node.name}: starting containerd")
            self._start_containerd(binaries)
            changes.append(f"node {self.node.name}: containerd started")
        imported = self.import_images(binaries, images)
        if imported:
            reporter.step(f"node {self.node.name}: imported {', '.join(imported)}")
        if not self.processes.running("kubelet"):
            reporter.step(f"node {self.node.name}: starting the kubelet ({node_ip})")
            self.processes.spawn(
                "kubelet",
                [str(binaries.kubelet), *kubelet_args(self.node, self.layout, node_ip=node_ip)],
                env=self._env(binaries),
            )
            changes.append(f"node {self.node.name}: kubelet started")
        return changes

    def _write_configs(self, binaries: NodeBinaries, node_ip: str) -> None:
        layout = self.layout
        for directory in (layout.root, layout.cni_conf_dir, layout.cni_data_dir, layout.pod_logs):
            directory.mkdir(parents=True, exist_ok=True)
        layout.root.chmod(0o700)
        layout.containerd_config.write_text(containerd_config(layout, binaries))
        (layout.cni_conf_dir / "10-gpuplane.conflist").write_text(
            json.dumps(cni_network(layout), indent=2)
        )
        configuration = kubelet_configuration(
            self.node, layout, client_ca=self.ca_dir / "ca.crt", node_ip=node_ip
        )
        layout.kubelet_config.write_text(yaml.safe_dump(configuration, sort_keys=False))
        if binaries.gpu is not None:
            layout.nvidia_runtime_config.write_text(nvidia_runtime_config(binaries))
            self._generate_cdi_spec(binaries)
        if not layout.kubeconfig.is_file():
            write_node_credentials(
                layout.pki,
                layout.kubeconfig,
                ca_dir=self.ca_dir,
                admin_kubeconfig=self.admin_kubeconfig,
                name=self.node.name,
                now=datetime.datetime.now(datetime.UTC),
            )

    def _generate_cdi_spec(self, binaries: NodeBinaries) -> None:
        """The CDI spec of this host's GPUs (device nodes, driver libraries, nvidia-smi),
        named by index and UUID, as the runtime's CDI mode and the device plugin expect."""
        if binaries.gpu is None:
            return
        NVIDIA_CDI_SPEC.parent.mkdir(parents=True, exist_ok=True)
        run_command(
            [
                str(binaries.gpu.nvidia_ctk), "cdi", "generate",
                f"--output={NVIDIA_CDI_SPEC}",
                f"--nvidia-cdi-hook-path={binaries.gpu.nvidia_cdi_hook}",
            ],
            env=self._env(binaries),
            timeout=120,
            what=f"nvidia-ctk cdi generate (node {self.node.name})",
        )  # fmt: skip

    def _env(self, binaries: NodeBinaries) -> dict[str, str]:
        # containerd finds its shim on PATH, the shim finds runc through the config.
        # Drivers installed outside /usr (as under /usr/local/nvidia) put nvidia-smi there.
        path = os.pathsep.join(
            [
                str(binaries.containerd.parent),
                str(binaries.runc.parent),
                os.environ.get("PATH", ""),
                "/usr/local/nvidia/bin",
            ]
        )
        env = {**os.environ, "PATH": path}
        if binaries.gpu is not None:
            env["NVIDIA_CTK_CONFIG_FILE_PATH"] = str(self.layout.nvidia_runtime_config)
        return env

    def _ctr(self, binaries: NodeBinaries, *args: str, timeout: float = 120.0) -> str:
        ctr = binaries.containerd.parent / "ctr"
        return run_command(
            [str(ctr), "--address", str(self.layout.containerd_socket), "-n", "k8s.io", *args],
            timeout=timeout,
            what=f"ctr {' '.join(args[:2])}",
            hint=f"containerd log: {self.processes.log_file('containerd')}",
        )

    def _start_containerd(
        self,
        binaries: NodeBinaries,
        *,
        timeout: float = 60.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.processes.spawn(
            "containerd",
            [str(binaries.containerd), "--config", str(self.layout.containerd_config)],
            env=self._env(binaries),
        )
        deadline = time.monotonic() + timeout
        while True:
            if not self.processes.running("containerd"):
                raise OperationError(
                    f"containerd of node {self.node.name} exited at start; "
                    f"see {self.processes.log_file('containerd')}"
                )
            try:
                self._ctr(binaries, "version", timeout=10)
            except OperationError:
                if time.monotonic() > deadline:
                    raise
                sleep(0.2)
            else:
                return

    def import_images(self, binaries: NodeBinaries, images: list[BuiltImage]) -> list[str]:
        """Import each image the node's containerd lacks; return the names imported."""
        present = set(self._ctr(binaries, "images", "ls", "-q").split())
        imported = []
        for image in images:
            if all(name in present for name in image.names):
                continue
            self._ctr(binaries, "images", "import", "--local", str(image.file), timeout=300)
            imported.append(image.name)
        return imported

    # -- down -------------------------------------------------------------------------

    def down(self, reporter: Reporter) -> list[str]:
        """Stop everything ``up`` started and remove what it made; return what is left
        behind (empty when clean)."""
        reporter.step(f"node {self.node.name}: stopping the kubelet, pods and containerd")
        self.processes.stop(("kubelet",), grace=20.0)
        kill_cgroup_processes(PODS_CGROUP)
        self.processes.stop(("containerd",), grace=15.0)
        # Shims outlive containerd by design; their containers are gone already.
        terminate(processes_mentioning(str(self.layout.containerd_socket)), grace=5.0)
        left = [str(p) for p in unmount_under((self.layout.root,))]
        delete_link(BRIDGE)
        if self.node.is_gpu:
            NVIDIA_CDI_SPEC.unlink(missing_ok=True)
            PLUGIN_CDI_SPEC.unlink(missing_ok=True)
        holder = kubelet_root_owner()
        if holder in (None, self.owner):
            left += clear_kubelet_root()
        else:
            # Another cluster's kubelet node (or another kubelet) uses it: not ours to take.
            left.append(f"{KUBELET_ROOT} (owned by {holder})")
        shutil.rmtree(self.layout.root, ignore_errors=True)
        return left

    def statuses(self) -> tuple[ComponentStatus, ...]:
        return tuple(
            ComponentStatus(
                f"{name} ({self.node.name})",
                self.processes.running(name),
                f"pid {self.processes.pid(name)}"
                if self.processes.running(name)
                else "not running",
            )
            for name in PROCESSES
        )
