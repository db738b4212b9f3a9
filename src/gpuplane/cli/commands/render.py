"""``gpuplane render k3d-config``: print what the k3d backend would create."""

from __future__ import annotations

import argparse
from typing import Any

import yaml

from gpuplane.backends.k3d.config import render_k3d_config
from gpuplane.cli.backend_choice import load
from gpuplane.cli.context import Context
from gpuplane.errors import ExitCode
from gpuplane.toolchain import read_pins


def register(verbs: Any) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = verbs.add_parser(
        "render", help="print generated configuration (k3d-config)"
    )
    parser.add_argument("what", choices=["k3d-config"])
    parser.set_defaults(run=run)
    return parser


def run(args: argparse.Namespace, context: Context) -> int:
    platform = load(args)
    version = platform.spec.kubernetes_version or read_pins().kubernetes
    context.stdout.write(yaml.safe_dump(render_k3d_config(platform, version), sort_keys=False))
    return int(ExitCode.OK)
