"""Kubernetes API access shared by the backends and verify: clients and error mapping."""

from gpuplane.kube.client import (
    ClusterUnreachableError,
    connect,
    get_raw,
    is_reachable,
    version_of,
    wait_reachable,
)

__all__ = [
    "ClusterUnreachableError",
    "connect",
    "get_raw",
    "is_reachable",
    "version_of",
    "wait_reachable",
]
