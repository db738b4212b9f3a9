"""``gpuplane toolchain status|build|terraform|terraform-mirror``: the upstream binaries
and their cache.

``terraform`` prints the Terraform-compatible binary to run (terraform or tofu on PATH,
else OpenTofu built from tools/tofu); ``--opentofu`` insists on the built OpenTofu.
``terraform-mirror`` prints the filesystem mirror holding infra/platform's provider
(gavinbunney/kubectl, built from tools/terraform-provider-kubectl on first use).
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.table import Table

from gpuplane.cli.backend_choice import load
from gpuplane.cli.context import Context
from gpuplane.cli.render import print_json
from gpuplane.errors import ExitCode
from gpuplane.toolchain import (
    BuildProgress,
    Component,
    cache_dir,
    components,
    ensure_built,
    pins_for,
    read_pins,
    tools_dir,
)
from gpuplane.toolchain.terraform import provider_mirror, terraform_binary


@dataclass(frozen=True)
class ComponentRow:
    name: str
    version: str
    path: str
    state: str


def _state(component: Component, cache: Path) -> str:
    if component.is_built(cache):
        return "built"
    return "optional" if component.optional else "missing"


def register(verbs: Any) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = verbs.add_parser(
        "toolchain", help="upstream binaries: status or build"
    )
    parser.add_argument("action", choices=["status", "build", "terraform", "terraform-mirror"])
    parser.add_argument(
        "--opentofu", action="store_true", help="terraform: the OpenTofu built here, not PATH's"
    )
    parser.add_argument("-o", "--output", choices=["table", "json"], default="table")
    parser.set_defaults(run=run)
    return parser


def run(args: argparse.Namespace, context: Context) -> int:
    platform = load(args)
    tools, cache = tools_dir(), cache_dir(context.env)
    pins = pins_for(tools, cache, read_pins(tools), platform.spec.kubernetes_version)
    reporter = context.reporter()

    def report(progress: BuildProgress) -> None:
        reporter.progress(
            "go build " + ", ".join(progress.binaries), progress.compiled, progress.total
        )

    if args.action == "terraform-mirror":
        # infra/platform's provider (gavinbunney/kubectl), built on first use.
        context.stdout.write(f"{provider_mirror(tools, cache, pins, report)}\n")
        return int(ExitCode.OK)
    if args.action == "terraform":
        binary = terraform_binary(tools, cache, pins, report, prefer_built=args.opentofu)
        context.stdout.write(f"{binary}\n")
        return int(ExitCode.OK)
    if args.action == "build":
        reporter.step(f"building the toolchain into {cache} (cold: several minutes)")
        # OpenTofu is not built here: `toolchain terraform` builds it when a host without
        # terraform runs the Terraform flow, so `make demo` never waits for it.
        ensure_built(tools, cache, pins, report)
    rows = [
        ComponentRow(c.name, c.version, str(c.path(cache)), _state(c, cache))
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
