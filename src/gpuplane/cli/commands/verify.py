"""``gpuplane verify``: platform conformance of any cluster against platform.yaml."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from rich.markup import escape
from rich.table import Table

from gpuplane.cli.backend_choice import add_backend_option, opened, print_choices
from gpuplane.cli.context import Context
from gpuplane.errors import ExitCode
from gpuplane.toolchain import tools_dir
from gpuplane.toolchain.images import TOOLBOX_NAME
from gpuplane.topology import Platform
from gpuplane.verify import CheckResult, Report, Status, VerifyOptions, run_verify
from gpuplane.verify.output import report_json, report_junit

STYLE = {
    Status.PASSED: "green",
    Status.FAILED: "bold red",
    Status.SKIPPED: "yellow",
    Status.SIMULATED: "magenta",
}


def register(verbs: Any) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = verbs.add_parser(
        "verify", help="check that a cluster enforces the platform's scheduling model"
    )
    add_backend_option(parser)
    parser.add_argument(
        "--kubeconfig", type=Path, help="any cluster (default: the platform's own kubeconfig)"
    )
    parser.add_argument("-o", "--output", choices=["table", "json", "junit"], default="table")
    parser.add_argument(
        "--keep-probes", action="store_true", help="keep the probe namespace for inspection"
    )
    parser.add_argument(
        "--probe-timeout", type=float, default=60.0, help="seconds to wait for probe pods"
    )
    parser.add_argument("--smoke-test", type=Path, default=None, help="GPU smoke test pod manifest")
    parser.add_argument(
        "--smoke-image",
        default=None,
        help="image for the smoke test (default: the manifest's; on a local cluster whose gpu "
        "node is a kubelet node, the offline toolbox image, which nvidia-smi is injected into)",
    )
    parser.set_defaults(run=run)
    return parser


def run(args: argparse.Namespace, context: Context) -> int:
    backend, resolved = opened(args, context)
    platform = resolved.platform
    kubeconfig = args.kubeconfig or backend.kubeconfig(platform)
    smoke = args.smoke_test or tools_dir().parent / "apps" / "gpu-smoke-test" / "pod.yaml"
    if args.output == "table":
        context.reporter().step(f"verifying {kubeconfig} against {args.platform_file}")
        print_choices(context, resolved)
    report = run_verify(
        platform,
        VerifyOptions(
            kubeconfig=kubeconfig,
            smoke_manifest=smoke,
            smoke_image=args.smoke_image or offline_smoke_image(platform),
            keep_probes=args.keep_probes,
            probe_timeout=args.probe_timeout,
        ),
    )
    if args.output == "json":
        context.stdout.write(json.dumps(report_json(report), indent=2) + "\n")
    elif args.output == "junit":
        context.stdout.write(report_junit(report))
    else:
        print_table(context, report)
    return int(ExitCode.OK if report.ok else ExitCode.CHECKS_FAILED)


def offline_smoke_image(platform: Platform) -> str | None:
    """A local cluster's kubelet gpu node pulls nothing: the toolbox image it has."""
    return TOOLBOX_NAME if platform.has_kubelet_gpu_node else None


def table_detail(check: CheckResult) -> str:
    """Short evidence for people: all of it when failed, its first line otherwise."""
    if check.status in (Status.SKIPPED, Status.SIMULATED):
        return check.reason
    if check.status is Status.FAILED:
        return "\n".join(check.evidence)
    if not check.evidence:
        return ""
    # Scheduler messages run on after their first sentence; the JSON keeps them whole.
    first = check.evidence[0].split(". ", 1)[0]
    more = len(check.evidence) - 1
    return first + (f" (+{more} more)" if more else "")


def print_table(context: Context, report: Report) -> None:
    table = Table("CHECK", "RESULT", "DESCRIPTION", "DETAIL", box=None)
    for check in report.checks:
        table.add_row(
            check.id,
            f"[{STYLE[check.status]}]{check.status.value}[/]",
            check.description,
            escape(table_detail(check)),
        )
    context.console.print(table)
    for note in report.notes:
        context.console.print(f"note: {note}", highlight=False)
    kind = "some nodes simulated (KWOK)" if report.simulated else "real nodes"
    context.console.print(f"cluster: {kind}; took {report.duration_seconds:.1f}s", highlight=False)
    context.console.print(report.summary_line(), highlight=False)
