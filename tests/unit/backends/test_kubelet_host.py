"""Host facts and clean-up helpers of a kubelet node, on their inputs as data: the
default route, mount points under the node's paths (deepest first, so nested mounts go
first), swap, and what a host lacks (root, overlayfs, cgroups)."""

from __future__ import annotations

from pathlib import Path

from gpuplane.backends.local.kubelet.host import (
    default_route_interfaces,
    host_problems,
    mounts_under,
    swap_in_use,
)

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


def test_swap() -> None:
    header = "Filename\tType\tSize\tUsed\tPriority\n"
    assert not swap_in_use(header)
    assert swap_in_use(header + "/swapfile file 1024 0 -2\n")


def test_host_problems_name_what_is_missing(tmp_path: Path) -> None:
    (tmp_path / "memory").mkdir()
    assert host_problems(euid=0, filesystems="nodev\toverlay\n", cgroup_root=tmp_path) == []
    problems = host_problems(euid=1000, filesystems="ext4\n", cgroup_root=tmp_path / "none")
    whats = " | ".join(p.what for p in problems)
    assert "runs as root" in whats and "uid 1000" in whats
    assert "overlayfs" in whats
    assert "cgroup" in whats
    assert all(p.fix for p in problems)
