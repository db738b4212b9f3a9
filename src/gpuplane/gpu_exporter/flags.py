"""The exporter's flags (standard library only: the CLI registers them without loading the
exporter's server)."""

from __future__ import annotations

import argparse
import os
import socket
from pathlib import Path

from gpuplane.gpu_exporter.podresources import DEFAULT_SOCKET, GPU_RESOURCE


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default="127.0.0.1", help="listen address (a pod: 0.0.0.0)")
    parser.add_argument("--port", type=int, default=9400, help="dcgm-exporter's port by default")
    parser.add_argument("--pod-resources-socket", type=Path, default=DEFAULT_SOCKET)
    parser.add_argument(
        "--resource", default=GPU_RESOURCE, help="the extended resource naming GPUs"
    )
    parser.add_argument(
        "--hostname",
        default=os.environ.get("NODE_NAME") or socket.gethostname(),
        help="the Hostname label (default: $NODE_NAME, else this host's name)",
    )
