"""gpuplane: a local GPU Kubernetes platform with the node roles of EKS/GKE."""

__version__ = "0.1.0"
