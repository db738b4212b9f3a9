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
