"""Which Prometheus a verb reads: ``--prometheus URL``, else the sim cluster's own."""

from __future__ import annotations

import argparse

from gpuplane.backends.sim.services import running_prometheus_url
from gpuplane.backends.sim.state import SimState
from gpuplane.backends.state_root import default_state_root
from gpuplane.cli.backend_choice import load
from gpuplane.cli.context import Context
from gpuplane.errors import BadInputError, PrerequisiteError


def add_prometheus_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--prometheus",
        metavar="URL",
        help="Prometheus base URL (default on sim: the cluster's own; on k3d: required, "
        "e.g. a `kubectl port-forward` to kube-prometheus-stack)",
    )


def prometheus_url(args: argparse.Namespace, context: Context) -> str:
    if args.prometheus:
        if not args.prometheus.startswith(("http://", "https://")):
            raise BadInputError(f"--prometheus must be an http(s) URL (got {args.prometheus!r})")
        return str(args.prometheus)
    platform = load(args)
    if platform.spec.backend != "sim":
        raise BadInputError(
            f"backend {platform.spec.backend!r} has no built-in Prometheus address: "
            "give --prometheus URL"
        )
    state = SimState(context.state_root() or default_state_root(), platform.name)
    url = running_prometheus_url(state)
    if url is None:
        raise PrerequisiteError(
            f"the Prometheus of sim cluster {platform.name!r} is not running (gpuplane up)"
        )
    return url
