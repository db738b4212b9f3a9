"""``gpuplane doctor``: host pre-flight for what the platform's backend needs here (the
kubelet nodes' root, cgroups, overlayfs, swap, NVML), or, where it needs nothing (every
node KWOK), for the k3d backend (Docker, the NVIDIA driver and toolkit, k3d)."""

from __future__ import annotations

import argparse
import dataclasses
import json
from typing import Any

from rich.markup import escape
from rich.table import Table

from gpuplane.backends.base import HostReport
from gpuplane.backends.choice import doctor_report
from gpuplane.cli.backend_choice import opened
from gpuplane.cli.context import Context
from gpuplane.doctor import Level
from gpuplane.errors import ExitCode

STYLE = {Level.OK: "green", Level.WARN: "yellow", Level.FAIL: "bold red"}


def register(verbs: Any) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = verbs.add_parser(
        "doctor",
        help="check this host for the platform's kubelet nodes, or for the k3d backend",
    )
    parser.add_argument("-o", "--output", choices=["table", "json"], default="table")
    parser.set_defaults(run=run)
    return parser


def _report(args: argparse.Namespace, context: Context) -> HostReport:
    if not args.platform_file.is_file():
        return doctor_report(None, None)
    backend, resolved = opened(args, context)
    return doctor_report(backend, resolved.platform)


def run(args: argparse.Namespace, context: Context) -> int:
    report = _report(args, context)
    failed = report.failed
    code = ExitCode.MISSING_PREREQUISITE if failed else ExitCode.OK
    if args.output == "json":
        document = {
            "ok": not failed,
            "checks": [dataclasses.asdict(check) for check in report.checks],
            "target": report.target,
            "suggestion": report.instead if failed else "",
        }
        context.stdout.write(json.dumps(document, indent=2) + "\n")
        return int(code)
    table = Table("CHECK", "STATUS", "FOUND", "CAUSE / FIX", box=None)
    for check in report.checks:
        advice = f"{check.cause}\n→ {check.fix}" if check.level is not Level.OK else ""
        table.add_row(
            check.id,
            f"[{STYLE[check.level]}]{check.level.value}[/]",
            escape(check.summary),
            escape(advice),
        )
    context.console.print(table)
    if failed:
        context.console.print(
            f"{len(failed)} check(s) failed: {report.target} cannot run on this host; "
            f"instead: {report.instead}",
            highlight=False,
        )
    else:
        context.console.print(f"this host can run {report.target}", highlight=False)
    return int(code)
