"""Where a kubelet node keeps everything: its own state directory under the cluster's,
plus the host paths every kubelet and device plugin agree on (``/var/lib/kubelet``).

The host paths are why there is at most one kubelet node per host: device plugins
register on ``/var/lib/kubelet/device-plugins/kubelet.sock`` and DaemonSets mount
those paths from the host, so a second kubelet could not have its own.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from gpuplane.backends.gpu_enablement import PLUGIN_CDI_SPEC_NAME

# Fixed by convention across kubelets, device plugins and CSI drivers.
KUBELET_ROOT = Path("/var/lib/kubelet")
# Where CDI specs are read from (the NVIDIA device plugin writes to the second).
CDI_SPEC_DIRS = (Path("/etc/cdi"), Path("/var/run/cdi"))
# The CDI spec of the host's GPUs that `up` generates (nvidia-ctk) and `down` removes:
# the NVIDIA runtime (RuntimeClass nvidia) injects from it.
NVIDIA_CDI_SPEC = Path("/var/run/cdi/gpuplane-nvidia.yaml")
# The CDI spec the device plugin writes (cdi-cri strategy), which `down` removes too:
# containerd injects a GPU pod's allocated devices from it.
PLUGIN_CDI_SPEC = CDI_SPEC_DIRS[1] / PLUGIN_CDI_SPEC_NAME
# The pod network: one bridge of our own, one /24 for the one node.
BRIDGE = "gpuplane0"
POD_SUBNET = "10.244.0.0/24"
NETWORK_NAME = "gpuplane"
# The cgroup parent of every pod (cgroupfs driver): what `down` empties and removes.
PODS_CGROUP = "kubepods"


@dataclass(frozen=True)
class NodeLayout:
    """Paths of the kubelet node ``name`` under ``directory`` (the cluster's state)."""

    directory: Path
    name: str
    # Where a node's pid files and logs live, under its root.
    PROCESSES_DIR: ClassVar[str] = "processes"

    @property
    def root(self) -> Path:
        return self.directory / f"node-{self.name}"

    @property
    def containerd_config(self) -> Path:
        return self.root / "containerd.toml"

    @property
    def containerd_root(self) -> Path:
        return self.root / "containerd" / "root"

    @property
    def containerd_state(self) -> Path:
        return self.root / "containerd" / "state"

    @property
    def containerd_socket(self) -> Path:
        return self.root / "containerd.sock"

    @property
    def nvidia_runtime_config(self) -> Path:
        return self.root / "nvidia-container-runtime.toml"

    @property
    def cni_conf_dir(self) -> Path:
        return self.root / "cni" / "net.d"

    @property
    def cni_data_dir(self) -> Path:
        """host-local IPAM's allocations."""
        return self.root / "cni" / "networks"

    @property
    def kubelet_config(self) -> Path:
        return self.root / "kubelet.yaml"

    @property
    def kubeconfig(self) -> Path:
        """The node's own credentials (system:node:<name>), mode 0600."""
        return self.root / "kubelet.kubeconfig"

    @property
    def pki(self) -> Path:
        return self.root / "pki"

    @property
    def pod_logs(self) -> Path:
        return self.root / "pod-logs"

    @property
    def supervised(self) -> Path:
        """Pid files and logs of containerd and the kubelet."""
        return self.root / self.PROCESSES_DIR
