"""Host facts and clean-up helpers of a kubelet node, on their inputs as data: the
default route, mount points under the node's paths (deepest first, so nested mounts go
first), and doctor's verdicts on what a host lacks (root, overlayfs, cgroups, swap,
NVML on a gpu node)."""

from __future__ import annotations

from pathlib import Path

from gpuplane.backends.local.kubelet.host import default_route_interfaces, mounts_under
from gpuplane.doctor import Level
from gpuplane.doctor.kubelet_host import KubeletHostFacts, kubelet_checks
from gpuplane.nvml import NvmlProbe

ROUTES = """Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask
wlan0\t00000000\t010200C0\t0003\t0\t0\t600\t00000000
eth0\t00000000\t010200C0\t0003\t0\t0\t100\t00000000
eth0\t000200C0\t00000000\t0001\t0\t0\t0\t00FFFFFF
"""

MOUNTINFO = """\
22 1 0:21 / / rw - ext4 /dev/vda rw
40 22 0:40 / /var/lib/kubelet/pods/abc/volumes/kubernetes.io~projected/token rw - tmpfs tmpfs rw
41 22 0:41 / /state/node-a/containerd/state/k8s.io/x/rootfs rw - overlay overlay rw
42 22 0:42 / /var/lib/kubelet/pods/abc rw - tmpfs tmpfs rw
43 22 0:43 / /var/lib/kubeletfoo rw - tmpfs tmpfs rw
"""


def test_default_route_lowest_metric_first() -> None:
    assert default_route_interfaces(ROUTES) == ["eth0", "wlan0"]
    assert default_route_interfaces("Iface\tDestination\n") == []


def test_mounts_under_our_paths_deepest_first() -> None:
    found = mounts_under((Path("/var/lib/kubelet"), Path("/state/node-a")), MOUNTINFO)
    assert found[0] == Path("/var/lib/kubelet/pods/abc/volumes/kubernetes.io~projected/token")
    assert Path("/var/lib/kubelet/pods/abc") in found
    assert Path("/var/lib/kubeletfoo") not in found  # a sibling, not under the prefix
    assert Path("/") not in found
    assert found.index(Path("/var/lib/kubelet/pods/abc")) > 0


SWAPS = "Filename\tType\tSize\tUsed\tPriority\n"


def facts(**changes: object) -> KubeletHostFacts:
    good = {
        "euid": 0,
        "filesystems": "nodev\tsysfs\nnodev\toverlay\n",
        "cgroup_hierarchies": ("cpu", "memory", "pids"),
        "swaps": SWAPS,
        "nvml": NvmlProbe(gpus=1, driver="580.159.04"),
    }
    return KubeletHostFacts(**{**good, **changes})  # type: ignore[arg-type]


def levels(checks: list) -> dict[str, Level]:  # type: ignore[type-arg]
    return {check.id: check.level for check in checks}


def test_a_good_host_passes_every_check() -> None:
    assert set(levels(kubelet_checks(facts(), gpu=True)).values()) == {Level.OK}
    assert "kubelet.nvml" not in levels(kubelet_checks(facts(), gpu=False))


def test_each_missing_prerequisite_fails_with_its_fix() -> None:
    bad = facts(
        euid=1000,
        filesystems="ext4\n",
        cgroup_hierarchies=(),
        swaps=SWAPS + "/swapfile file 1024 0 -2\n",
        nvml=NvmlProbe(error="libnvidia-ml.so.1 cannot be loaded"),
    )
    checks = kubelet_checks(bad, gpu=True)
    assert levels(checks) == {
        "kubelet.root": Level.FAIL,
        "kubelet.overlayfs": Level.FAIL,
        "kubelet.cgroups": Level.FAIL,
        "kubelet.swap": Level.WARN,
        "kubelet.nvml": Level.FAIL,
    }
    root = next(c for c in checks if c.id == "kubelet.root")
    assert "uid 1000" in root.summary and "runtime: kwok" in root.fix
    assert all(c.fix for c in checks)
