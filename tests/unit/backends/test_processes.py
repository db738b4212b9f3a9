"""Process bookkeeping of the sim backend: a killed but unreaped child (zombie) counts as
gone, so a supervisor restarts it; stop_leftovers kills what ignores SIGTERM."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

from gpuplane.backends.sim.processes import pid_alive, stop_leftovers


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
