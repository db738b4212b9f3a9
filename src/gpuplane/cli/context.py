"""What every verb receives: its streams, environment and a console to draw on."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from rich.console import Console

from gpuplane.backends.base import Reporter


@dataclass
class Context:
    stdout: TextIO
    stderr: TextIO
    env: dict[str, str]
    console: Console
    err_console: Console

    @classmethod
    def create(cls, stdout: TextIO, stderr: TextIO, env: dict[str, str]) -> Context:
        # Width is fixed when not on a terminal so captured tables are stable.
        width = None if stdout.isatty() else 120
        return cls(
            stdout=stdout,
            stderr=stderr,
            env=env,
            console=Console(file=stdout, width=width, soft_wrap=True),
            err_console=Console(file=stderr, width=width, soft_wrap=True),
        )

    def reporter(self) -> Reporter:
        return ConsoleReporter(self.err_console)

    def state_root(self) -> Path | None:
        value = self.env.get("GPUPLANE_STATE")
        return Path(value) if value else None


class ConsoleReporter:
    """Progress on stderr, so stdout stays clean for tables and JSON."""

    def __init__(self, console: Console) -> None:
        self._console = console
        self._last_percent: dict[str, int] = {}

    def step(self, message: str) -> None:
        self._console.print(f"[bold cyan]•[/] {message}", highlight=False)

    def progress(self, label: str, done: int, total: int) -> None:
        percent = 100 if total <= 0 else min(100, done * 100 // total)
        # A line every 10%: readable in CI logs as well as on a terminal.
        bucket = percent // 10
        if self._last_percent.get(label) == bucket:
            return
        self._last_percent[label] = bucket
        self._console.print(f"  {label}: {done}/{total} ({percent}%)", highlight=False)
