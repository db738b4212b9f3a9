"""Process and file bookkeeping of the sim backend: a killed but unreaped child (zombie)
counts as gone, so a supervisor restarts it; stop_leftovers kills what ignores SIGTERM;
a half-written kubeconfig reads as unreachable instead of crashing."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from gpuplane.backends.local.processes import pid_alive, stop_leftovers
from gpuplane.kube import is_reachable


def test_zombie_counts_as_gone() -> None:
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    assert pid_alive(child.pid)
    os.kill(child.pid, signal.SIGKILL)
    deadline = time.monotonic() + 5
    while pid_alive(child.pid) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not pid_alive(child.pid)  # still unreaped here: a zombie
    child.wait()


def test_stop_leftovers_kills_what_ignores_sigterm() -> None:
    stubborn = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(60)",
        ]
    )
    time.sleep(0.3)
    os.kill(stubborn.pid, signal.SIGTERM)
    killed = stop_leftovers([stubborn.pid], grace=0.5)
    assert killed == [stubborn.pid]
    assert stubborn.wait(timeout=5) == -signal.SIGKILL


def test_a_half_written_kubeconfig_is_unreachable_not_a_crash(tmp_path: Path) -> None:
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text("apiVersion: v1\nclusters: null\ncontexts: null\nusers: null\n")
    assert not is_reachable(kubeconfig)
    kubeconfig.write_text("{{{ not yaml")
    assert not is_reachable(kubeconfig)
    assert not is_reachable(tmp_path / "missing")
