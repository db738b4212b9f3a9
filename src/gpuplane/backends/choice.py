"""Which backend runs a platform: chosen once, here, from spec.backend. The only place
that knows every backend by name; callers get a ``ClusterBackend`` and ask it for its
capabilities."""

from __future__ import annotations

from pathlib import Path

from gpuplane.backends.base import ClusterBackend, HostReport
from gpuplane.backends.k3d import K3dBackend
from gpuplane.backends.local import LocalBackend
from gpuplane.topology import Platform
from gpuplane.topology.model import DEPRECATED_BACKEND_NAMES

# What --backend accepts: every backend, and the old names still read.
BACKEND_NAMES = ("local", "k3d", *DEPRECATED_BACKEND_NAMES)


def backend_for(
    platform: Platform,
    *,
    state_root: Path | None = None,
    cache: Path | None = None,
    run_services: bool = True,
) -> ClusterBackend:
    if platform.spec.backend == "k3d":
        return K3dBackend(state_root=state_root)
    return LocalBackend(state_root=state_root, cache=cache, run_services=run_services)


def doctor_report(backend: ClusterBackend | None, platform: Platform | None) -> HostReport:
    """What ``gpuplane doctor`` checks: the platform's backend's needs of this host, or,
    where it needs nothing (every node KWOK) or there is no platform file, what real GPUs
    need (the k3d backend's)."""
    if backend is not None and platform is not None:
        report = backend.preflight(platform)
        if report.checks:
            return report
    return K3dBackend().host_report()
