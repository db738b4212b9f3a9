"""Platform conformance against any kubeconfig: topology, GPU capacity, scheduling probes."""

from gpuplane.verify.model import CheckResult, Report, Status
from gpuplane.verify.runner import VerifyOptions, run_verify

__all__ = ["CheckResult", "Report", "Status", "VerifyOptions", "run_verify"]
