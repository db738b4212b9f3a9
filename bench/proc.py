"""A benchmarked process's own figures, read from Linux's /proc."""

from __future__ import annotations

import os
import re
from pathlib import Path

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def process_figures(pid: int) -> tuple[float, float]:
    """CPU seconds used so far (user plus system) and RSS in MB of ``pid``."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    cpu = (int(fields[11]) + int(fields[12])) / CLOCK_TICKS
    match = re.search(r"VmRSS:\s+(\d+) kB", Path(f"/proc/{pid}/status").read_text())
    return cpu, (int(match.group(1)) / 1024 if match else 0.0)
