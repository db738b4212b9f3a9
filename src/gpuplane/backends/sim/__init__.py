"""The sim backend: upstream control plane processes with KWOK-simulated nodes."""

from gpuplane.backends.sim.backend import SimBackend

__all__ = ["SimBackend"]
