"""Pick the backend a platform declares (or ``--backend`` overrides)."""

from __future__ import annotations

import argparse

from gpuplane.backends.base import ClusterBackend
from gpuplane.backends.k3d import K3dBackend
from gpuplane.backends.local import LocalBackend
from gpuplane.cli.context import Context
from gpuplane.toolchain import cache_dir
from gpuplane.topology import Platform, load_platform
from gpuplane.topology.model import DEPRECATED_BACKEND_NAMES


def add_backend_option(
    parser: argparse.ArgumentParser, default: object = argparse.SUPPRESS
) -> None:
    """``--backend`` on a verb; SUPPRESS keeps a value given before the verb."""
    parser.add_argument(
        "--backend",
        choices=["local", "sim", "k3d"],
        default=default,
        help="override spec.backend of the platform file (sim: the old name of local)",
    )


def load(args: argparse.Namespace) -> Platform:
    platform = load_platform(args.platform_file)
    override = getattr(args, "backend", None)
    override = DEPRECATED_BACKEND_NAMES.get(override, override) if override else None
    if override and override != platform.spec.backend:
        spec = platform.spec.model_copy(update={"backend": override})
        platform = platform.model_copy(update={"spec": spec})
    return platform


def backend_for(platform: Platform, context: Context, *, services: bool = True) -> ClusterBackend:
    if platform.spec.backend == "k3d":
        return K3dBackend(state_root=context.state_root())
    return LocalBackend(
        state_root=context.state_root(), cache=cache_dir(context.env), services=services
    )
