"""Names of Kubernetes resources more than one process reads."""

from __future__ import annotations

# The extended resource the NVIDIA device plugin advertises (and pods request).
GPU_RESOURCE = "nvidia.com/gpu"
