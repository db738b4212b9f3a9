"""The platform's own images, built offline into the cache as OCI layouts.

- ``pause``: the pod sandbox, compiled from the pinned Kubernetes module's
  ``build/pause/linux/pause.c`` with ``gcc -static`` (upstream builds it the same way).
- ``toolbox``: Debian's static busybox with its applets, plus the host's glibc loader and
  core libraries, so a driver's ``nvidia-smi`` that CDI injects runs inside it (the GPU
  smoke test) and shell probes run on CPU nodes.

No registry is involved anywhere; ``gpuplane image load`` imports these into a kubelet
node's containerd. This is the air-gapped path.
"""

from __future__ import annotations

import hashlib
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from gpuplane.commands import run_command
from gpuplane.errors import PrerequisiteError
from gpuplane.toolchain.gocmd import run_go
from gpuplane.toolchain.oci_layout import Entry, ImageSpec, write_layout

PAUSE_NAMES = ("registry.k8s.io/pause:3.10.1", "registry.k8s.io/pause:3.10")
TOOLBOX_NAME = "gpuplane.io/toolbox:1"
MULTIARCH = "x86_64-linux-gnu"
GLIBC_LIBRARIES = ("libc.so.6", "libm.so.6", "libdl.so.2", "libpthread.so.0", "librt.so.1")


@dataclass(frozen=True)
class BuiltImage:
    name: str
    names: tuple[str, ...]
    file: Path


def _need(program: str, why: str, package: str) -> str:
    found = shutil.which(program)
    if found is None:
        raise PrerequisiteError(f"{program} is not installed: {why} (apt-get install {package})")
    return found


def _fingerprint(*parts: bytes) -> str:
    digest = hashlib.sha256()
    for part in parts:
        digest.update(hashlib.sha256(part).digest())
    return digest.hexdigest()[:16]


def pause_source(kube_module_dir: Path) -> Path:
    """pause.c of the Kubernetes release the wrapper module pins."""
    directory = run_go(
        ["list", "-m", "-f", "{{.Dir}}", "k8s.io/kubernetes"], cwd=kube_module_dir, timeout=600
    ).strip()
    source = Path(directory) / "build" / "pause" / "linux" / "pause.c"
    if not source.is_file():
        run_go(["mod", "download", "k8s.io/kubernetes"], cwd=kube_module_dir, timeout=600)
    return source


def build_pause(kube_module_dir: Path, images: Path) -> BuiltImage:
    source = pause_source(kube_module_dir)
    text = source.read_bytes()
    target = images / f"pause-{_fingerprint(text)}.oci.tar"
    if not target.is_file():
        gcc = _need("gcc", "the pause image is compiled from pause.c", "gcc libc6-dev")
        with tempfile.TemporaryDirectory() as work:
            binary = Path(work) / "pause"
            version = f'-DVERSION="{PAUSE_NAMES[0].rsplit(":", 1)[1]}"'
            run_command(
                [gcc, "-Os", "-s", "-static", "-Wall", version, "-o", str(binary), str(source)],
                timeout=120,
                what="compiling pause.c",
            )
            spec = ImageSpec(
                names=PAUSE_NAMES,
                entries=(Entry("pause", binary.read_bytes(), mode=0o755),),
                entrypoint=("/pause",),
                user="65535:65535",
                env=(),
            )
            write_layout(spec, target)
    return BuiltImage("pause", PAUSE_NAMES, target)


def _host_file(path: str) -> bytes:
    return Path(path).resolve().read_bytes()


def toolbox_entries(
    busybox: bytes, applets: list[str], libraries: dict[str, bytes]
) -> tuple[Entry, ...]:
    """A merged-/usr root: busybox and its applets, the glibc loader and libraries."""
    directories = [
        "usr", "usr/bin", "usr/sbin", "usr/lib", f"usr/lib/{MULTIARCH}", "usr/lib64", "etc",
        "proc", "sys", "dev", "root", "run", "var", "var/tmp", "tmp",
    ]  # fmt: skip
    entries = [Entry(d, directory=True, mode=0o1777 if d == "tmp" else 0o755) for d in directories]
    entries += [
        Entry(link, link=target)
        for link, target in (
            ("bin", "usr/bin"),
            ("sbin", "usr/sbin"),
            ("lib", "usr/lib"),
            ("lib64", "usr/lib64"),
        )
    ]
    entries.append(Entry("usr/bin/busybox", busybox, mode=0o755))
    entries += [
        Entry(f"usr/bin/{name}", link="busybox") for name in sorted(set(applets) - {"busybox"})
    ]
    for name, data in libraries.items():
        entries.append(Entry(f"usr/lib/{MULTIARCH}/{name}", data, mode=0o755))
    entries.append(
        Entry("usr/lib64/ld-linux-x86-64.so.2", link=f"../lib/{MULTIARCH}/ld-linux-x86-64.so.2")
    )
    entries += [
        Entry(
            "etc/passwd",
            b"root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n",
        ),
        Entry("etc/group", b"root:x:0:\nnogroup:x:65534:\n"),
        Entry("etc/hosts", b"127.0.0.1 localhost\n"),
    ]
    return tuple(entries)


def build_toolbox(images: Path) -> BuiltImage:
    busybox_path = _need(
        "busybox", "the toolbox image is Debian's static busybox", "busybox-static"
    )
    busybox = Path(busybox_path).resolve().read_bytes()
    libraries = {"ld-linux-x86-64.so.2": _host_file("/lib64/ld-linux-x86-64.so.2")}
    for name in GLIBC_LIBRARIES:
        libraries[name] = _host_file(f"/lib/{MULTIARCH}/{name}")
    target = images / f"toolbox-{_fingerprint(busybox, *libraries.values())}.oci.tar"
    if not target.is_file():
        applets = run_command([busybox_path, "--list"], timeout=30).split()
        spec = ImageSpec(
            names=(TOOLBOX_NAME,),
            entries=toolbox_entries(busybox, applets, libraries),
            command=("/bin/sh",),
            env=(
                "PATH=/usr/local/nvidia/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                "LD_LIBRARY_PATH=/usr/local/nvidia/lib:/usr/local/nvidia/lib64",
            ),
        )
        write_layout(spec, target)
    return BuiltImage("toolbox", (TOOLBOX_NAME,), target)


def build_images(kube_module_dir: Path, cache: Path) -> list[BuiltImage]:
    """Every platform image, from the cache when its inputs did not change."""
    images = cache / "images"
    return [build_pause(kube_module_dir, images), build_toolbox(images)]
