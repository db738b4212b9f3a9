"""The k3d backend: real k3s nodes in Docker with NVIDIA GPUs."""

from gpuplane.backends.k3d.backend import K3dBackend

__all__ = ["K3dBackend"]
