"""Processes of the local backend: the control plane's (read from kwokctl's pid files),
and stopping any process the way ``down`` must: SIGTERM, a grace, then SIGKILL."""

from __future__ import annotations

import functools
import os
import signal
import time
from collections.abc import Callable
from pathlib import Path

from gpuplane.backends.base import ComponentStatus
from gpuplane.backends.local.state import LocalState

COMPONENTS = (
    "etcd",
    "kube-apiserver",
    "kube-controller-manager",
    "kube-scheduler",
    "kwok-controller",
)


def pid_alive(pid: int) -> bool:
    """True for a running process; a zombie (dead, not yet reaped) counts as gone."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True  # no /proc here: the signal check is all there is
    # The state letter follows the parenthesised command name, which may hold spaces.
    return stat.rpartition(")")[2].split()[:1] != ["Z"]


@functools.cache
def boot_time(proc: Path = Path("/proc")) -> float | None:
    """When this host booted (seconds since the epoch), from /proc/stat's btime; read
    once per process (it does not change while we run)."""
    try:
        for line in (proc / "stat").read_text().splitlines():
            if line.startswith("btime "):
                return float(line.split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return None


def written_this_boot(path: Path) -> bool:
    """A pid file from before the last boot names a process that is gone: its pid may be
    anybody's now (``down`` as root once could signal an unrelated process)."""
    booted = boot_time()
    try:
        return booted is None or path.stat().st_mtime >= booted
    except OSError:
        return False


def process_start(pid: int) -> int | None:
    """The process's start time (clock ticks since boot, /proc/PID/stat field 22): with the
    pid it names one process for good, where the pid alone may be reused."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
        return int(fields[19])
    except (OSError, ValueError, IndexError):
        return None


def command_of(pid: int) -> list[str]:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return []
    return [part.decode(errors="replace") for part in raw.split(b"\0") if part]


def read_pid(state: LocalState, component: str) -> int | None:
    """A control-plane component's pid from kwokctl's pid file, only when it is this
    cluster's process: written since boot, and its binary is the cluster's own copy."""
    path = state.cluster_dir / "pids" / f"{component}.pid"
    try:
        pid = int(path.read_text().strip())
    except (OSError, ValueError):
        return None
    if not written_this_boot(path):
        return None
    command = command_of(pid)
    if command and not command[0].startswith(str(state.cluster_dir)):
        return None
    return pid


def component_statuses(state: LocalState) -> tuple[ComponentStatus, ...]:
    statuses = []
    for component in COMPONENTS:
        pid = read_pid(state, component)
        running = pid is not None and pid_alive(pid)
        detail = f"pid {pid}" if running else "not running"
        statuses.append(
            ComponentStatus(component, running, detail, simulated=component == "kwok-controller")
        )
    return tuple(statuses)


def running_pids(state: LocalState) -> list[int]:
    """Pids of the cluster's processes that are still alive (for tests and down)."""
    pids = [read_pid(state, component) for component in COMPONENTS]
    return [pid for pid in pids if pid is not None and pid_alive(pid)]


def stop_leftovers(
    pids: list[int],
    *,
    grace: float = 30.0,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> list[int]:
    """Wait up to ``grace`` seconds for ``pids`` to exit, then SIGKILL; return the killed.

    kwokctl sends SIGTERM and returns at once, while kube-apiserver drains for a while:
    ``down`` promises no process is left, so it waits here.
    """
    deadline = clock() + grace
    alive = [pid for pid in pids if pid_alive(pid)]
    while alive and clock() < deadline:
        sleep(0.1)
        alive = [pid for pid in alive if pid_alive(pid)]
    for pid in alive:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            continue
    return alive


def terminate(pids: list[int], *, grace: float) -> list[int]:
    """SIGTERM each living pid, wait up to ``grace``, SIGKILL the rest; return the killed."""
    alive = [pid for pid in pids if pid_alive(pid)]
    for pid in alive:
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            continue
    return stop_leftovers(alive, grace=grace)
