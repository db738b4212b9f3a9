"""What a kubelet node takes from the host and leaves on it: the node's address, and the
clean-up that makes ``down`` the exact inverse of ``up`` (pod processes, cgroups, mounts,
the bridge). The host's prerequisites are doctor's (``doctor.kubelet_host``).

Only the kernel's interfaces are used (``/proc``, ``/sys``, ioctl, netlink): the GPU
machine has no ``ip`` command.
"""

from __future__ import annotations

import ctypes
import fcntl
import os
import signal
import socket
import struct
from pathlib import Path

from gpuplane.backends.local.processes import command_of

SIOCGIFADDR = 0x8915
MNT_DETACH = 2
CGROUP_ROOT = Path("/sys/fs/cgroup")


def interface_address(name: str) -> str | None:
    """The IPv4 address of interface ``name`` (None if it has none)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            answer = fcntl.ioctl(
                probe.fileno(), SIOCGIFADDR, struct.pack("256s", name.encode()[:15])
            )
        except OSError:
            return None
    return socket.inet_ntoa(answer[20:24])


def default_route_interfaces(route_table: str) -> list[str]:
    """Interfaces of ``/proc/net/route``'s default routes, lowest metric first (pure)."""
    routes = []
    for line in route_table.splitlines()[1:]:
        fields = line.split()
        if len(fields) >= 7 and fields[1] == "00000000":
            routes.append((int(fields[6]), fields[0]))
    return [name for _, name in sorted(routes)]


def node_address(exclude: tuple[str, ...] = ()) -> str:
    """The address the kubelet registers and serves on: the default route's interface,
    else the first other interface with an IPv4 address (a host with no network, as the
    GPU machine is). The kubelet refuses a loopback node IP."""
    try:
        table = Path("/proc/net/route").read_text()
    except OSError:
        table = ""
    candidates = default_route_interfaces(table) + [
        name for _, name in socket.if_nameindex() if name != "lo"
    ]
    for name in candidates:
        if name in exclude:
            continue
        address = interface_address(name)
        if address and not address.startswith("127."):
            return address
    raise OSError("no interface with an IPv4 address other than loopback")


def _cgroup_dirs(name: str, cgroup_root: Path) -> list[Path]:
    """``name`` under every cgroup hierarchy (v1: one per controller; v2: one)."""
    found = []
    if (cgroup_root / name).is_dir():
        found.append(cgroup_root / name)
    for hierarchy in sorted(p for p in cgroup_root.iterdir() if p.is_dir()):
        if (hierarchy / name).is_dir():
            found.append(hierarchy / name)
    return found


def kill_cgroup_processes(name: str, cgroup_root: Path = CGROUP_ROOT) -> int:
    """SIGKILL every process in cgroup ``name`` (and below); return how many."""
    pids: set[int] = set()
    for top in _cgroup_dirs(name, cgroup_root):
        for procs in top.rglob("cgroup.procs"):
            try:
                pids.update(int(p) for p in procs.read_text().split())
            except OSError:
                continue
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            continue
    return len(pids)


def remove_cgroups(name: str, cgroup_root: Path = CGROUP_ROOT) -> list[Path]:
    """rmdir cgroup ``name`` and its children, deepest first; return what remains."""
    left = []
    for top in _cgroup_dirs(name, cgroup_root):
        for directory in sorted(
            (p for p in top.rglob("*") if p.is_dir()), key=lambda p: -len(p.parts)
        ):
            try:
                directory.rmdir()
            except OSError:
                left.append(directory)
        try:
            top.rmdir()
        except OSError:
            left.append(top)
    return left


def mounts_under(prefixes: tuple[Path, ...], mountinfo: str) -> list[Path]:
    """Mount points of ``/proc/self/mountinfo`` under any of ``prefixes``, deepest first."""
    points = []
    for line in mountinfo.splitlines():
        fields = line.split()
        if len(fields) < 5:
            continue
        point = Path(fields[4].replace("\\040", " "))
        if any(point == prefix or prefix in point.parents for prefix in prefixes):
            points.append(point)
    return sorted(set(points), key=lambda p: -len(p.parts))


def unmount_under(prefixes: tuple[Path, ...]) -> list[Path]:
    """Lazily unmount everything under ``prefixes``; return what stayed mounted."""
    libc = ctypes.CDLL(None, use_errno=True)
    for point in mounts_under(prefixes, Path("/proc/self/mountinfo").read_text()):
        libc.umount2(str(point).encode(), MNT_DETACH)
    return mounts_under(prefixes, Path("/proc/self/mountinfo").read_text())


def delete_link(name: str) -> bool:
    """Delete network interface ``name`` over rtnetlink; False if it does not exist."""
    try:
        index = socket.if_nametoindex(name)
    except OSError:
        return False
    rtm_dellink, nlm_f_request, nlm_f_ack, nlmsg_error = 17, 1, 4, 2
    body = struct.pack("=BxHiII", socket.AF_UNSPEC, 0, index, 0, 0)
    header = struct.pack("=LHHLL", 16 + len(body), rtm_dellink, nlm_f_request | nlm_f_ack, 1, 0)
    with socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 0) as netlink:
        netlink.bind((0, 0))
        netlink.send(header + body)
        reply = netlink.recv(4096)
    kind = struct.unpack_from("=LHHLL", reply)[1]
    if kind == nlmsg_error:
        code = struct.unpack_from("=i", reply, 16)[0]
        if code != 0:
            raise OSError(-code, f"deleting interface {name}: {os.strerror(-code)}")
    return True


def processes_mentioning(text: str) -> list[int]:
    """Pids whose command line contains ``text`` (the shims of our containerd)."""
    pids = (int(entry.name) for entry in Path("/proc").iterdir() if entry.name.isdigit())
    return [pid for pid in pids if text in " ".join(command_of(pid))]
