"""Kubernetes API access shared by the backends and verify: clients and error mapping."""

from gpuplane.kube.client import ClusterUnreachableError, connect, get_raw, is_reachable, version_of

__all__ = ["ClusterUnreachableError", "connect", "get_raw", "is_reachable", "version_of"]
