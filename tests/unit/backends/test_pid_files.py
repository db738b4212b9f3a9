"""Pid files are trusted only for the process that wrote them: a supervisor's file names
its process by pid AND start time, a file from before the last boot names nobody, and
kwokctl's files count only for a binary under the cluster's own directory. Real processes
(sleep), real /proc; nothing unrelated is ever signalled."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from gpuplane.backends.local.kubelet.layout import NodeLayout
from gpuplane.backends.local.kubelet.node import (
    OWNER_FILE,
    kubelet_root_owner,
    stale_kubelet_root_owner,
)
from gpuplane.backends.local.processes import boot_time, pid_alive, process_start, read_pid
from gpuplane.backends.local.state import LocalState
from gpuplane.backends.local.supervisor import Supervisor

SLEEP = [sys.executable, "-c", "import time; time.sleep(60)"]


def test_a_supervised_process_is_known_by_pid_and_start_time(tmp_path: Path) -> None:
    supervisor = Supervisor(tmp_path)
    pid = supervisor.spawn("sleeper", SLEEP)
    try:
        words = (tmp_path / "sleeper.pid").read_text().split()
        assert words == [str(pid), str(process_start(pid))]
        assert supervisor.pid("sleeper") == pid and supervisor.running("sleeper")
    finally:
        supervisor.stop(("sleeper",), grace=5)
    assert not pid_alive(pid)


def test_a_reused_pid_is_not_ours_and_is_never_signalled(tmp_path: Path) -> None:
    bystander = subprocess.Popen(SLEEP)
    try:
        # As if our process died and the kernel gave its pid to this one.
        started = process_start(bystander.pid)
        assert started is not None
        (tmp_path / "sleeper.pid").write_text(f"{bystander.pid} {started - 1}\n")
        supervisor = Supervisor(tmp_path)
        assert supervisor.pid("sleeper") is None
        assert supervisor.stop(("sleeper",), grace=1) == []
        time.sleep(0.2)
        assert bystander.poll() is None  # alive: nothing was sent to it
    finally:
        bystander.kill()
        bystander.wait()


def test_a_pid_file_from_before_the_boot_names_nobody(tmp_path: Path) -> None:
    booted = boot_time()
    assert booted is not None
    file = tmp_path / "sleeper.pid"
    file.write_text(f"{os.getpid()}\n")  # an old-style file naming a living process
    os.utime(file, (booted - 3600, booted - 3600))
    assert Supervisor(tmp_path).pid("sleeper") is None


def test_a_control_plane_pid_counts_only_for_the_clusters_own_binary(tmp_path: Path) -> None:
    state = LocalState(tmp_path, "c")
    pids = state.cluster_dir / "pids"
    pids.mkdir(parents=True)
    (pids / "etcd.pid").write_text(str(os.getpid()))  # this pytest: not the cluster's etcd
    assert read_pid(state, "etcd") is None
    binary = state.cluster_dir / "bin" / "etcd"
    binary.parent.mkdir()
    binary.symlink_to(sys.executable)
    ours = subprocess.Popen([str(binary), "-c", "import time; time.sleep(60)"])
    try:
        (pids / "etcd.pid").write_text(str(ours.pid))
        assert read_pid(state, "etcd") == ours.pid
    finally:
        ours.kill()
        ours.wait()


def test_the_kubelet_root_owner(tmp_path: Path) -> None:
    root = tmp_path / "kubelet"
    assert kubelet_root_owner(root) is None
    root.mkdir()
    (root / "pods").mkdir()
    assert kubelet_root_owner(root) == "another kubelet"
    assert stale_kubelet_root_owner(root) is None  # not ours to judge, nor to clear


def test_a_kubelet_root_owner_counts_while_its_node_runs_and_is_stale_after(
    tmp_path: Path,
) -> None:
    root = tmp_path / "kubelet"
    root.mkdir()
    cluster = tmp_path / "cluster-a"
    (root / OWNER_FILE).write_text(f"{cluster}\n")
    # The owner's state directory is gone (rm -rf of the state): stale.
    assert kubelet_root_owner(root) is None
    assert stale_kubelet_root_owner(root) == str(cluster)
    supervisor = Supervisor(NodeLayout(cluster, "agent-0").supervised)
    supervisor.directory.mkdir(parents=True)
    pid = supervisor.spawn("kubelet", SLEEP)
    try:
        assert kubelet_root_owner(root) == str(cluster)
        assert stale_kubelet_root_owner(root) is None
    finally:
        supervisor.stop(("kubelet",), grace=5)
    # Killed (or the machine restarted): its pid file is left and names nobody alive.
    assert not pid_alive(pid)
    (supervisor.directory / "kubelet.pid").write_text(f"{pid}\n")
    assert kubelet_root_owner(root) is None
    assert stale_kubelet_root_owner(root) == str(cluster)
