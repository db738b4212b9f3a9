"""The activator's flags (standard library only: the CLI registers them without loading
the proxy)."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", type=Path, required=True, help="the routes file (YAML)")
    parser.add_argument("--kubeconfig", type=Path, help="default: in-cluster, else ~/.kube/config")
    parser.add_argument("--listen", default="127.0.0.1:8080", help="HOST:PORT of the proxy")
    parser.add_argument(
        "--metrics-address", default="127.0.0.1:9091", help="HOST:PORT of /metrics and /healthz"
    )
    # Defaults fit the pod's 256 Mi memory limit (wire.ListenerLimits says how).
    parser.add_argument(
        "--max-connections", type=int, default=4096,
        help="client connections at once; more are answered 503 and closed (default 4096)",
    )  # fmt: skip
    parser.add_argument(
        "--body-budget-mib", type=int, default=96,
        help="request heads and bodies buffered by the whole process, MiB (default 96); past "
        "it, connections are read only as requests are forwarded",
    )  # fmt: skip
    parser.add_argument(
        "--body-idle-seconds", type=float, default=30.0,
        help="a request body that sends nothing this long closes its connection (default 30)",
    )  # fmt: skip
