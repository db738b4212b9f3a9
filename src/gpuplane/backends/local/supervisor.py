"""Detached processes that outlive ``gpuplane up``: each with a pid file and a log in one
directory, started once, stopped (SIGTERM, then SIGKILL after a grace) by ``down``."""

from __future__ import annotations

import subprocess
from pathlib import Path

from gpuplane.backends.local.processes import (
    pid_alive,
    process_start,
    terminate,
    written_this_boot,
)


class Supervisor:
    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def _pid_file(self, name: str) -> Path:
        return self.directory / f"{name}.pid"

    def log_file(self, name: str) -> Path:
        return self.directory / f"{name}.log"

    def pid(self, name: str) -> int | None:
        """The pid of ``name``, only while the pid file names the process this supervisor
        started (pid and start time, written since boot); None for a stale file."""
        path = self._pid_file(name)
        try:
            words = path.read_text().split()
            pid = int(words[0])
            started = int(words[1]) if len(words) > 1 else None
        except (OSError, ValueError, IndexError):
            return None
        if not written_this_boot(path):
            return None
        if started is not None and process_start(pid) not in (started, None):
            return None  # the pid belongs to another process now
        return pid

    def running(self, name: str) -> bool:
        pid = self.pid(name)
        return pid is not None and pid_alive(pid)

    def spawn(self, name: str, argv: list[str], *, env: dict[str, str] | None = None) -> int:
        """Start ``argv`` detached (its own session), logging to ``<name>.log``."""
        self.directory.mkdir(parents=True, exist_ok=True)
        with self.log_file(name).open("ab") as log:
            process = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.directory,
                env=env,
                start_new_session=True,  # outlives `gpuplane up`; `down` stops it
            )
        started = process_start(process.pid)
        record = f"{process.pid} {started}" if started is not None else str(process.pid)
        self._pid_file(name).write_text(record + "\n")
        return process.pid

    def stop(self, names: tuple[str, ...], *, grace: float = 15.0) -> list[int]:
        """SIGTERM each running process of ``names``, wait ``grace``, SIGKILL the rest;
        return the pids that had to be killed."""
        pids = [pid for pid in (self.pid(name) for name in names) if pid is not None]
        killed = terminate(pids, grace=grace)
        for name in names:
            self._pid_file(name).unlink(missing_ok=True)
        return killed
