"""The activator's flags (standard library only: the CLI registers them without loading
the proxy)."""

from __future__ import annotations

import argparse
from pathlib import Path

# What one activator accepts at once; the defaults fit the pod's 256 Mi memory limit
# (wire.ListenerLimits says how, and takes these as its defaults).
MAX_CONNECTIONS = 4096
INPUT_BUDGET_MIB = 96
BODY_IDLE_SECONDS = 30.0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", type=Path, required=True, help="the routes file (YAML)")
    parser.add_argument("--kubeconfig", type=Path, help="default: in-cluster, else ~/.kube/config")
    parser.add_argument("--listen", default="127.0.0.1:8080", help="HOST:PORT of the proxy")
    parser.add_argument(
        "--metrics-address", default="127.0.0.1:9091", help="HOST:PORT of /metrics and /healthz"
    )
    parser.add_argument(
        "--max-connections", type=int, default=MAX_CONNECTIONS,
        help="client connections at once; more are answered 503 and closed (default %(default)s)",
    )  # fmt: skip
    parser.add_argument(
        "--input-budget-mib", type=int, default=INPUT_BUDGET_MIB,
        help="request heads and bodies buffered by the whole process, MiB (default "
        "%(default)s); past it, connections are read only as requests are forwarded",
    )  # fmt: skip
    parser.add_argument(
        "--body-idle-seconds", type=float, default=BODY_IDLE_SECONDS,
        help="a request body that sends nothing this long closes its connection "
        "(default %(default)s)",
    )  # fmt: skip
