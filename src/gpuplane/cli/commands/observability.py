"""``gpuplane observability check``: every PromQL of observability/ parses (promtool);
with a Prometheus (``--prometheus URL``, or ``--live`` for the local cluster's own) every
dashboard query must also answer with data. Exit 1 when a check fails.
"""

from __future__ import annotations

import argparse
import time
from typing import Any

from rich.table import Table

from gpuplane.cli.context import Context
from gpuplane.cli.prometheus_choice import (
    add_prometheus_option,
    add_since_option,
    prometheus_url,
    since_seconds,
)
from gpuplane.cli.render import print_json
from gpuplane.errors import ExitCode
from gpuplane.observability.promql import QueryCheck, Window, data_checks, parse_checks
from gpuplane.observability.queries import all_queries
from gpuplane.toolchain import repo_root


def register(verbs: Any) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = verbs.add_parser(
        "observability", help="check the dashboards' and rules' PromQL (parse; data with --live)"
    )
    parser.add_argument("action", choices=["check"])
    parser.add_argument(
        "--live",
        action="store_true",
        help="also require data from every dashboard query (sim: the cluster's Prometheus)",
    )
    add_since_option(
        parser, "15m", "data checks pass with a number anywhere in this range, as a dashboard"
    )
    add_prometheus_option(parser)
    parser.add_argument("-o", "--output", choices=["table", "json"], default="table")
    parser.set_defaults(run=run)
    return parser


# Dashboards of workloads rather than of the platform: checked for data where they run.
OPTIONAL_DASHBOARDS = {"inference.json": "inference_ready"}


def run(args: argparse.Namespace, context: Context) -> int:
    seconds = since_seconds(args)  # a bad --since is named before anything runs
    queries = all_queries(repo_root() / "observability")
    rows = [("parse", check) for check in parse_checks(queries)]
    if args.live or args.prometheus:
        url = prometheus_url(args, context)
        # Rules' alert expressions are empty while nothing fires: only dashboards need data.
        dashboards = [query for query in queries if query.source.endswith(".json")]
        window = Window(time.time(), seconds)
        checks = data_checks(dashboards, url, window, OPTIONAL_DASHBOARDS)
        rows += [("data", check) for check in checks]
    failed = sum(not check.ok for _, check in rows)
    if args.output == "json":
        print_json(context, [_row(kind, check) for kind, check in rows])
    else:
        table = Table("CHECK", "RESULT", "QUERY", "DETAIL", box=None)
        for kind, check in rows:
            table.add_row(kind, "ok" if check.ok else "FAIL", check.query.label, check.detail)
        context.console.print(table)
        context.console.print(f"{len(rows) - failed} ok, {failed} failed", highlight=False)
    return int(ExitCode.OK if failed == 0 else ExitCode.CHECKS_FAILED)


def _row(kind: str, check: QueryCheck) -> dict[str, Any]:
    return {
        "check": kind,
        "ok": check.ok,
        "source": check.query.source,
        "where": check.query.where,
        "expr": check.query.expr,
        "detail": check.detail,
    }
