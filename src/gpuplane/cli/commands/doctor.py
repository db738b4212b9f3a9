"""``gpuplane doctor``: host pre-flight for the real (k3d) backend."""

from __future__ import annotations

import argparse
import dataclasses
import json
from typing import Any

from rich.markup import escape
from rich.table import Table

from gpuplane.cli.context import Context
from gpuplane.doctor import Level, collect_facts, evaluate
from gpuplane.errors import ExitCode

STYLE = {Level.OK: "green", Level.WARN: "yellow", Level.FAIL: "bold red"}


def register(verbs: Any) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = verbs.add_parser(
        "doctor", help="check this host for the k3d backend (driver, Docker GPU, versions)"
    )
    parser.add_argument("-o", "--output", choices=["table", "json"], default="table")
    parser.set_defaults(run=run)
    return parser


def run(args: argparse.Namespace, context: Context) -> int:
    checks = evaluate(collect_facts())
    failed = [check for check in checks if check.level is Level.FAIL]
    code = ExitCode.MISSING_PREREQUISITE if failed else ExitCode.OK
    if args.output == "json":
        document = {
            "ok": not failed,
            "checks": [dataclasses.asdict(check) for check in checks],
            "suggestion": "use --backend local" if failed else "",
        }
        context.stdout.write(json.dumps(document, indent=2) + "\n")
        return int(code)
    table = Table("CHECK", "STATUS", "FOUND", "CAUSE / FIX", box=None)
    for check in checks:
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
            f"{len(failed)} check(s) failed: the k3d backend (real GPUs) cannot run on this "
            "host. The local backend needs none of this: gpuplane up --backend local",
            highlight=False,
        )
    else:
        context.console.print("this host can run the k3d backend", highlight=False)
    return int(code)
