"""Tables for people and JSON for machines, from the backends' status objects."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

from rich.table import Table

from gpuplane.backends.base import ClusterStatus
from gpuplane.cli.context import Context


def to_jsonable(value: Any) -> Any:
    """Dataclasses, tuples and paths as plain JSON values."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, list | tuple):
        return [to_jsonable(item) for item in value]
    if isinstance(value, dict):
        return {str(key): to_jsonable(item) for key, item in value.items()}
    if isinstance(value, Path):
        return str(value)
    return value


def print_json(context: Context, value: Any) -> None:
    context.stdout.write(json.dumps(to_jsonable(value), indent=2, sort_keys=False) + "\n")


def print_status(
    context: Context, status: ClusterStatus, runtimes: list[str] | None = None
) -> None:
    """The cluster, its nodes and components, what ``runtime: auto`` became and why, and
    what is simulated."""
    state = "running" if status.running else "not running"
    context.console.print(
        f"cluster [bold]{status.name}[/] ({status.backend} backend): {state}"
        + (f", Kubernetes {status.kubernetes_version}" if status.kubernetes_version else ""),
        highlight=False,
    )
    if status.nodes:
        nodes = Table("NODE", "ROLE", "READY", "TAINTS", "GPU", "SIMULATED", box=None)
        for node in status.nodes:
            nodes.add_row(
                node.name,
                node.role,
                "yes" if node.ready else "NO",
                ", ".join(node.taints) or "-",
                str(node.gpus_allocatable),
                "yes (KWOK)" if node.simulated else "no",
            )
        context.console.print(nodes)
    if status.components:
        parts = Table("COMPONENT", "RUNNING", "DETAIL", box=None)
        for component in status.components:
            parts.add_row(
                component.name + (" (simulated)" if component.simulated else ""),
                "yes" if component.running else "NO",
                component.detail,
            )
        context.console.print(parts)
    for line in runtimes or []:
        context.console.print(line, highlight=False)
    for note in status.simulated:
        context.console.print(f"[yellow]simulated:[/] {note}", highlight=False)
