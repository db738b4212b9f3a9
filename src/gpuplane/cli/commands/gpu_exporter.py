"""``gpuplane gpu-exporter``: serve this host's GPU metrics (NVML, dcgm-exporter's names,
pods from the kubelet's pod-resources API). The DaemonSet's image runs the same code
(``python -m gpuplane.gpu_exporter.main``) without the rest of the CLI."""

from __future__ import annotations

import argparse
from typing import Any

from gpuplane.cli.context import Context
from gpuplane.gpu_exporter.flags import add_arguments


def register(verbs: Any) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = verbs.add_parser(
        "gpu-exporter",
        help="serve this host's GPU metrics with dcgm-exporter's names and pod attribution",
    )
    add_arguments(parser)
    parser.set_defaults(run=run)
    return parser


def run(args: argparse.Namespace, context: Context) -> int:
    # Imported on use: the exporter's server (aiohttp, NVML) is not every verb's cost.
    from gpuplane.gpu_exporter.main import run as run_exporter  # noqa: PLC0415

    return run_exporter(args)
