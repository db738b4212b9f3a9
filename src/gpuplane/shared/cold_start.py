"""The cold start, phase by phase: process start → imports → weights loaded → on device →
warmed up → ready. Each phase's duration is what a wake from zero costs in that step."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path

PHASES = ("imports", "weights_loaded", "on_device", "warmed_up", "ready")


def process_started_at() -> float:
    """When this process was started (epoch seconds), from /proc: the interpreter's own
    start-up counts too. Its age is measured against /proc/uptime (10 ms steps), not the
    boot time in /proc/stat, whose whole seconds would put up to a second into the first
    phase. Falls back to now where /proc is not Linux's."""
    try:
        fields = Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()
        ticks = int(fields[19])  # field 22 of stat(5), counted after "pid (comm)"
        uptime = float(Path("/proc/uptime").read_text().split()[0])
        now = time.time()
        return now - max(0.0, uptime - ticks / os.sysconf("SC_CLK_TCK"))
    except (OSError, ValueError, IndexError):
        return time.time()


@dataclass
class Startup:
    started_at: float
    marks: dict[str, float] = field(default_factory=dict)

    def mark(self, phase: str, at: float | None = None) -> None:
        if phase not in PHASES:
            raise ValueError(f"unknown start-up phase {phase!r}")
        self.marks[phase] = time.time() if at is None else at

    def durations(self) -> dict[str, float]:
        """Seconds each phase took (from the previous mark; the first from process start)."""
        out: dict[str, float] = {}
        previous = self.started_at
        for phase in PHASES:
            if phase in self.marks:
                out[phase] = max(0.0, self.marks[phase] - previous)
                previous = self.marks[phase]
        return out

    def total(self) -> float | None:
        return self.marks["ready"] - self.started_at if "ready" in self.marks else None
