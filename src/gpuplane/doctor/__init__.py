"""Host pre-flight for the real (k3d) backend: driver, Docker GPU support, versions."""

from gpuplane.doctor.checks import DoctorCheck, Level, evaluate
from gpuplane.doctor.host import HostFacts, collect_facts

__all__ = ["DoctorCheck", "HostFacts", "Level", "collect_facts", "evaluate"]
