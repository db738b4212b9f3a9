"""``gpuplane toolchain status|build``: the upstream binaries and their cache."""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from typing import Any

from rich.table import Table

from gpuplane.cli.backend_choice import load
from gpuplane.cli.context import Context
from gpuplane.cli.render import print_json
from gpuplane.errors import ExitCode
from gpuplane.toolchain import (
    BuildProgress,
    cache_dir,
    components,
    ensure_built,
    pins_for,
    read_pins,
    tools_dir,
)


@dataclass(frozen=True)
class ComponentRow:
    name: str
    version: str
    path: str
    state: str


def register(verbs: Any) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = verbs.add_parser(
        "toolchain", help="upstream binaries: status or build"
    )
    parser.add_argument("action", choices=["status", "build"])
    parser.add_argument("-o", "--output", choices=["table", "json"], default="table")
    parser.set_defaults(run=run)
    return parser


def run(args: argparse.Namespace, context: Context) -> int:
    platform = load(args)
    tools, cache = tools_dir(), cache_dir(context.env)
    pins = pins_for(tools, cache, read_pins(tools), platform.spec.kubernetes_version)
    if args.action == "build":
        reporter = context.reporter()
        reporter.step(f"building the toolchain into {cache} (cold: several minutes)")

        def report(progress: BuildProgress) -> None:
            reporter.progress(
                "go build " + ", ".join(progress.binaries), progress.compiled, progress.total
            )

        ensure_built(tools, cache, pins, report)
    rows = [
        ComponentRow(
            c.name, c.version, str(c.path(cache)), "built" if c.is_built(cache) else "missing"
        )
        for c in components(pins)
    ]
    if args.output == "json":
        print_json(context, rows)
    else:
        table = Table("COMPONENT", "VERSION", "STATE", "PATH", box=None)
        for row in rows:
            table.add_row(row.name, row.version, row.state, row.path)
        context.console.print(table)
    missing = sum(row.state == "missing" for row in rows)
    return int(ExitCode.OK if missing == 0 else ExitCode.MISSING_PREREQUISITE)
