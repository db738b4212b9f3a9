"""The declared topology (platform.yaml): model, validation and loading."""

from gpuplane.topology.loader import DEFAULT_PLATFORM_FILE, TopologyError, load_platform
from gpuplane.topology.model import ROLE_LABEL, Node, Platform, Role
from gpuplane.topology.syntax import Taint

__all__ = [
    "DEFAULT_PLATFORM_FILE",
    "ROLE_LABEL",
    "Node",
    "Platform",
    "Role",
    "Taint",
    "TopologyError",
    "load_platform",
]
