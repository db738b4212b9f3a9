"""``gpuplane report --png FILE``: GPU and downscaler panels from Prometheus to a PNG."""

from __future__ import annotations

import argparse
import importlib.util
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from gpuplane.cli.context import Context
from gpuplane.cli.prometheus_choice import (
    add_prometheus_option,
    add_since_option,
    prometheus_url,
    since_seconds,
)
from gpuplane.cli.render import print_json
from gpuplane.errors import BadInputError, ExitCode, PrerequisiteError
from gpuplane.observability.report import fetch_panels, left_out, render_png


def register(verbs: Any) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = verbs.add_parser(
        "report", help="render GPU and downscaler panels from Prometheus to a PNG"
    )
    parser.add_argument("--png", required=True, type=Path, metavar="FILE", help="PNG to write")
    add_since_option(parser, "30m", "the report's time range")
    add_prometheus_option(parser)
    parser.add_argument("-o", "--output", choices=["text", "json"], default="text")
    parser.set_defaults(run=run)
    return parser


def run(args: argparse.Namespace, context: Context) -> int:
    seconds = since_seconds(args)
    if not args.png.parent.is_dir():
        raise BadInputError(f"--png: directory {args.png.parent} does not exist")
    if importlib.util.find_spec("matplotlib") is None:
        raise PrerequisiteError("matplotlib is not installed: pip install 'gpuplane[report]'")
    url = prometheus_url(args, context)
    end = datetime.now(UTC)
    start = end - timedelta(seconds=seconds)
    panels = fetch_panels(url, start, end)
    title = f"gpuplane report {start:%Y-%m-%d %H:%M:%S} to {end:%H:%M:%S} UTC ({url})"
    if any(panel.simulated for panel in panels):
        title += "\nGPU series SIMULATED (KWOK gpu nodes; the traffic simulator writes them)"
    render_png(panels, args.png, title, (start, end))
    series = sum(len(panel.series) for panel in panels)
    omitted = left_out(panels)
    if args.output == "json":
        summary = {
            "png": str(args.png),
            "bytes": args.png.stat().st_size,
            "prometheus": url,
            "start": start.isoformat(),
            "end": end.isoformat(),
            "panels": [
                {
                    "title": panel.spec.title,
                    "series": [s.name for s in panel.series],
                    "simulated": panel.simulated,
                }
                for panel in panels
            ],
            "leftOut": omitted,
        }
        print_json(context, summary)
        return int(ExitCode.OK)
    context.console.print(
        f"wrote {args.png} ({args.png.stat().st_size} bytes): "
        f"{len(panels) - len(omitted)} panels, {series} series",
        highlight=False,
    )
    for panel in panels:
        if panel.simulated:
            context.console.print(f"  simulated: {panel.spec.title}", highlight=False)
    for line in omitted:
        context.console.print(f"  left out: {line}", highlight=False)
    return int(ExitCode.OK)
