"""``gpuplane render k3d-config|deploy-files``: generated configuration.

k3d-config prints what the k3d backend would create. deploy-files writes
deploy/downscaler/*.yaml from charts/downscaler; with ``--check`` it only compares and
exits 1 when a file differs from the chart (``make validate`` runs that).
"""

from __future__ import annotations

import argparse
from typing import Any

import yaml

from gpuplane.backends.k3d.config import render_k3d_config
from gpuplane.cli.backend_choice import load
from gpuplane.cli.context import Context
from gpuplane.errors import ExitCode
from gpuplane.toolchain import cache_dir, component, read_pins, repo_root
from gpuplane.toolchain.helm import render_deploy_files


def register(verbs: Any) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = verbs.add_parser(
        "render", help="generated configuration: k3d-config (print), deploy-files (write)"
    )
    parser.add_argument("what", choices=["k3d-config", "deploy-files"])
    parser.add_argument(
        "--check", action="store_true", help="deploy-files: compare only, exit 1 on a difference"
    )
    parser.set_defaults(run=run)
    return parser


def run(args: argparse.Namespace, context: Context) -> int:
    if args.what == "deploy-files":
        return deploy_files(args.check, context)
    platform = load(args)
    version = platform.spec.kubernetes_version or read_pins().kubernetes
    context.stdout.write(yaml.safe_dump(render_k3d_config(platform, version), sort_keys=False))
    return int(ExitCode.OK)


def deploy_files(check: bool, context: Context) -> int:
    pins = read_pins()
    helm = component(pins, "helm").path(cache_dir(context.env))
    root = repo_root()
    rendered = render_deploy_files(helm, root / "charts" / "downscaler", pins.kubernetes)
    stale = []
    for name, text in rendered.items():
        path = root / "deploy" / "downscaler" / name
        current = path.read_text(encoding="utf-8") if path.is_file() else None
        if current == text:
            continue
        stale.append(str(path.relative_to(root)))
        if not check:
            path.write_text(text, encoding="utf-8")
    if check and stale:
        context.stderr.write(
            f"{', '.join(stale)} differ from charts/downscaler: "
            "run `gpuplane render deploy-files` and commit the result\n"
        )
        return int(ExitCode.CHECKS_FAILED)
    verb = "up to date" if not stale else f"written: {', '.join(stale)}"
    context.stdout.write(f"deploy/downscaler {verb}\n")
    return int(ExitCode.OK)
