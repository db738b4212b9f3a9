"""Which Prometheus a verb reads (``--prometheus URL``, else the local cluster's own) and
how far back (``--since``)."""

from __future__ import annotations

import argparse

from gpuplane.cli.backend_choice import backend_for, load
from gpuplane.cli.context import Context
from gpuplane.errors import BadInputError, PrerequisiteError
from gpuplane.shared.durations import parse_duration
from gpuplane.shared.quoting import quoted


def add_prometheus_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--prometheus",
        metavar="URL",
        help="Prometheus base URL (default on local: the cluster's own; on k3d: required, "
        "e.g. a `kubectl port-forward` to kube-prometheus-stack)",
    )


def prometheus_url(args: argparse.Namespace, context: Context) -> str:
    if args.prometheus:
        if not args.prometheus.startswith(("http://", "https://")):
            raise BadInputError(
                f"--prometheus must be an http(s) URL (got {quoted(args.prometheus)})"
            )
        return str(args.prometheus)
    platform = load(args)
    backend = backend_for(platform, context)
    services = backend.services()
    if services is None:
        raise BadInputError(
            f"backend {backend.name!r} has no built-in Prometheus address: give --prometheus URL"
        )
    url = services.prometheus_url(platform)
    if url is None:
        raise PrerequisiteError(
            f"the Prometheus of local cluster {platform.name!r} is not running (gpuplane up)"
        )
    return url


def add_since_option(parser: argparse.ArgumentParser, default: str, what: str) -> None:
    parser.add_argument(
        "--since",
        default=default,
        metavar="DURATION",
        help=f"{what}: how far back, e.g. 90s, 15m, 2h (default {default})",
    )


def since_seconds(args: argparse.Namespace) -> int:
    try:
        seconds = int(parse_duration(args.since).total_seconds())
    except ValueError as error:
        raise BadInputError(f"--since: {error}") from None
    if seconds <= 0:
        raise BadInputError(f"--since: {quoted(args.since)} is not longer than 0s")
    return seconds
