"""The backend a verb works on: the platform file's (``--backend`` overrides it before
validation), made once with the verb's state root and cache; its optional capabilities
asked for by name, with one message when it lacks them."""

from __future__ import annotations

import argparse
from typing import TypeVar

from gpuplane.backends import choice
from gpuplane.backends.base import ClusterBackend, HostServices, ImageStore, ResolvedPlatform
from gpuplane.cli.context import Context
from gpuplane.errors import BadInputError
from gpuplane.toolchain import cache_dir
from gpuplane.topology import Platform, load_platform

T = TypeVar("T")


def add_backend_option(
    parser: argparse.ArgumentParser, default: object = argparse.SUPPRESS
) -> None:
    """``--backend`` on a verb; SUPPRESS keeps a value given before the verb."""
    parser.add_argument(
        "--backend",
        choices=list(choice.BACKEND_NAMES),
        default=default,
        help="override spec.backend of the platform file (sim: the old name of local)",
    )


def load(args: argparse.Namespace) -> Platform:
    return load_platform(args.platform_file, backend=getattr(args, "backend", None))


def backend_for(
    platform: Platform, context: Context, *, run_services: bool = True
) -> ClusterBackend:
    return choice.backend_for(
        platform,
        state_root=context.state_root(),
        cache=cache_dir(context.env),
        run_services=run_services,
    )


def opened(
    args: argparse.Namespace, context: Context, *, run_services: bool = True
) -> tuple[ClusterBackend, ResolvedPlatform]:
    """The verb's backend and its platform with every ``runtime: auto`` resolved (once, by
    the backend, from this host's facts)."""
    platform = load(args)
    backend = backend_for(platform, context, run_services=run_services)
    return backend, backend.resolve(platform)


def print_choices(context: Context, resolved: ResolvedPlatform) -> None:
    """What each ``auto`` node resolved to and why, on stderr (stdout stays for output)."""
    for line in resolved.lines():
        context.err_console.print(line, highlight=False)


def _capability(found: T | None, backend: ClusterBackend, verb: str, lacks: str) -> T:
    """What ``backend`` has, or bad input naming the verb, the backend and what it lacks."""
    if found is None:
        raise BadInputError(f"gpuplane {verb}: the {backend.name} backend {lacks}")
    return found


def image_store(backend: ClusterBackend, verb: str) -> ImageStore:
    lacks = "takes no offline images (it applies to the local backend's kubelet nodes)"
    return _capability(backend.images(), backend, verb, lacks)


def host_services(backend: ClusterBackend, verb: str) -> HostServices:
    lacks = "runs no services beside the cluster (it applies to the local backend)"
    return _capability(backend.services(), backend, verb, lacks)
