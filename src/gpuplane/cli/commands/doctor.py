"""``gpuplane doctor``: host pre-flight for the k3d backend, or, when the platform declares
kubelet nodes, for those nodes (root, cgroups, overlayfs, swap, NVML on gpu nodes)."""

from __future__ import annotations

import argparse
import dataclasses
import json
from typing import Any

from rich.markup import escape
from rich.table import Table

from gpuplane.cli.backend_choice import load
from gpuplane.cli.context import Context
from gpuplane.doctor import DoctorCheck, Level, collect_facts, evaluate
from gpuplane.doctor.kubelet_host import kubelet_host_checks
from gpuplane.errors import ExitCode

STYLE = {Level.OK: "green", Level.WARN: "yellow", Level.FAIL: "bold red"}


def register(verbs: Any) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = verbs.add_parser(
        "doctor",
        help="check this host for the k3d backend, or for the platform's kubelet nodes",
    )
    parser.add_argument("-o", "--output", choices=["table", "json"], default="table")
    parser.set_defaults(run=run)
    return parser


def _kubelet_checks(args: argparse.Namespace) -> list[DoctorCheck] | None:
    """The kubelet-node checks when the platform file declares kubelet nodes, else None."""
    if not args.platform_file.is_file():
        return None
    platform = load(args)
    if platform.spec.backend != "local" or not platform.kubelet_nodes:
        return None
    return kubelet_host_checks(platform)


def run(args: argparse.Namespace, context: Context) -> int:
    kubelet = _kubelet_checks(args)
    checks = kubelet if kubelet is not None else evaluate(collect_facts())
    target = "the kubelet node(s)" if kubelet is not None else "the k3d backend"
    failed = [check for check in checks if check.level is Level.FAIL]
    code = ExitCode.MISSING_PREREQUISITE if failed else ExitCode.OK
    if args.output == "json":
        document = {
            "ok": not failed,
            "checks": [dataclasses.asdict(check) for check in checks],
            "target": "kubelet" if kubelet is not None else "k3d",
            "suggestion": ("runtime: kwok" if kubelet is not None else "use --backend local")
            if failed
            else "",
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
    if failed and kubelet is not None:
        context.console.print(
            f"{len(failed)} check(s) failed: {target} cannot run on this host; KWOK nodes "
            "need none of this (runtime: kwok)",
            highlight=False,
        )
    elif failed:
        context.console.print(
            f"{len(failed)} check(s) failed: the k3d backend (real GPUs) cannot run on this "
            "host. The local backend needs none of this: gpuplane up --backend local",
            highlight=False,
        )
    else:
        context.console.print(f"this host can run {target}", highlight=False)
    return int(code)
