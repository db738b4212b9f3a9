"""The local backend: the upstream control plane as local processes on 127.0.0.1, and per
node a runtime: KWOK (simulated) or the upstream kubelet with containerd (real)."""

from gpuplane.backends.local.backend import LocalBackend

__all__ = ["LocalBackend"]
