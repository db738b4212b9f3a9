"""A Python service's image assembled offline from an interpreter found on this host: the
interpreter (relocated under /usr/local), its standard library, the files of the
distributions the service needs (read from that interpreter's own environment), the
service's package, and every shared library ``ldd`` says they load.

Here the interpreter is the repo's venv (numpy on the CPU); on the GPU host it is the one
that has torch with its CUDA libraries, which cannot be sent there (gigabytes): the same
builder is pointed at what that host has. The NVIDIA driver's libraries are not copied:
CDI injects them into the container."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from gpuplane.commands import run_command
from gpuplane.errors import PrerequisiteError
from gpuplane.toolchain.bytecode import bytecode_entries
from gpuplane.toolchain.oci_layout import Entry, ImageSpec, write_layout

MULTIARCH = "x86_64-linux-gnu"
LIBRARY_DIR = f"usr/lib/{MULTIARCH}"
SITE = "opt/gpuplane/site"
# Parts of the standard library a service never imports (tests alone are ~30 MB).
STDLIB_SKIP = {
    "site-packages", "dist-packages", "test", "tests", "idlelib", "tkinter", "turtledemo",
    "ensurepip", "lib2to3", "__pycache__", "pydoc_data",
}  # fmt: skip
# glibc's libraries by name, in every image that may run on a gpu node (this one and the
# toolbox), whether or not the image's own binaries link them: the NVIDIA driver's
# libraries that CDI injects at run time (libnvidia-ml, libcuda) still link libdl,
# libpthread and librt, which a modern build of Python no longer needs.
GLIBC_LIBRARIES = ("libc.so.6", "libm.so.6", "libdl.so.2", "libpthread.so.0", "librt.so.1")
MULTIARCH_DIRS = (Path(f"/lib/{MULTIARCH}"), Path(f"/usr/lib/{MULTIARCH}"), Path("/lib64"))
# Declared dependencies the service never loads: tokenizers needs huggingface-hub only to
# download from the Hub, which the service must never do; transformers imports it (and
# is taken where installed: the GPU host), so there it stays. Skipped -> unless wanted.
NOT_NEEDED = {"huggingface-hub": "transformers"}

# Run by the target interpreter: where its pieces are, and the files of ``wanted`` and of
# every installed distribution they require (uninstalled optional ones are skipped).
PROBE = r"""
import importlib.metadata as md, json, re, sys, sysconfig
given, skip = json.loads(sys.argv[1]), set(json.loads(sys.argv[2]))
def norm(name): return re.sub(r"[-_.]+", "-", name).lower()
def installed(name):
    try:
        md.distribution(name)
    except md.PackageNotFoundError:
        return False
    return True
asked = {norm(n.lstrip("?")) for n in given}
for skipped, unless in json.loads(sys.argv[3]).items():
    if unless in asked and installed(unless):
        skip.discard(skipped)
def parse(requirement):
    match = re.match(r"\s*([A-Za-z0-9._-]+)\s*(?:\[([^\]]*)\])?", requirement)
    extras = {e.strip() for e in (match.group(2) or "").split(",") if e.strip()}
    return norm(match.group(1)), extras
required = [parse(n) for n in given if not n.startswith("?")]
wanted = [name for name, _ in required]
done, files, missing, versions = {}, [], [], {}
todo = required + [parse(n[1:]) for n in given if n.startswith("?")]
while todo:
    name, extras = todo.pop()
    if name in skip or (name in done and extras <= done[name]):
        continue
    try:
        dist = md.distribution(name)
    except md.PackageNotFoundError:
        if name in wanted:
            missing.append(name)
        continue
    first = name not in done
    done[name] = done.get(name, set()) | extras
    for requirement in dist.requires or []:
        # torch asks for cuda-toolkit[nvrtc,...]: an extra's requirements come with it.
        extra = re.search(r"extra\s*==\s*['\"]([^'\"]+)['\"]", requirement)
        if (extra and extra.group(1) not in extras) or (not extra and not first):
            continue
        todo.append(parse(requirement))
    if first:
        versions[name] = dist.version
        for file in dist.files or []:
            files.append([str(dist.locate_file(file)), str(file)])
print(json.dumps({
    "executable": sys.executable, "version": "%d.%d" % sys.version_info[:2],
    "stdlib": sysconfig.get_paths()["stdlib"], "files": files, "missing": missing,
    "versions": versions,
}))
"""


@dataclass(frozen=True)
class Environment:
    """What the target interpreter reported."""

    executable: Path
    version: str
    stdlib: Path
    files: tuple[tuple[Path, str], ...]
    versions: dict[str, str]


def probe_environment(
    python: Path,
    distributions: Iterable[str],
    extra_path: Iterable[Path] = (),
    skip: Iterable[str] = (),
) -> Environment:
    """Ask ``python`` (not this process: it may be another interpreter with torch) where its
    standard library is and which files make up ``distributions`` and their requirements;
    a name starting with ``?`` is taken only where installed."""
    env = {**os.environ, "PYTHONNOUSERSITE": "1"}
    extra = [str(p) for p in extra_path]
    if extra:
        env["PYTHONPATH"] = os.pathsep.join(extra)
    output = run_command(
        [
            str(python),
            "-c",
            PROBE,
            json.dumps(list(distributions)),
            json.dumps(sorted(set(NOT_NEEDED) | set(skip))),
            json.dumps(NOT_NEEDED),
        ],
        timeout=120,
        env=env,
        what=f"asking {python} about its environment",
    )
    report = json.loads(output)
    if report["missing"]:
        raise PrerequisiteError(
            f"{python} lacks {', '.join(report['missing'])}: the image is assembled from that "
            "interpreter's own environment (install them there, or pass --python)"
        )
    executable = Path(report["executable"]).resolve()
    return Environment(
        executable=executable,
        version=report["version"],
        stdlib=Path(report["stdlib"]),
        files=tuple((Path(path), relative) for path, relative in report["files"]),
        versions=dict(report["versions"]),
    )


def _stdlib_files(stdlib: Path) -> Iterator[Path]:
    for root, directories, files in os.walk(stdlib):
        directories[:] = sorted(
            d for d in directories if d not in STDLIB_SKIP and not d.startswith("config-")
        )
        for name in sorted(files):
            # Tk's module drags X11 and Tcl/Tk into the image; a service never loads it.
            if not name.startswith("_tkinter"):
                yield Path(root) / name


def _is_elf(path: Path) -> bool:
    try:
        with path.open("rb") as handle:
            return handle.read(4) == b"\x7fELF"
    except OSError:
        return False


def shared_libraries(binaries: list[Path], inside: tuple[Path, ...]) -> dict[str, Path]:
    """soname -> host file of every library ``binaries`` load that is not already among
    the copied files (under ``inside``). Libraries ldd cannot find (the driver's
    libcuda.so.1) are left to CDI."""
    ldd = shutil.which("ldd")
    if ldd is None:
        raise PrerequisiteError("ldd is not installed: it lists the libraries to copy (libc-bin)")
    found: dict[str, Path] = {}
    for start in range(0, len(binaries), 200):
        chunk = [str(b) for b in binaries[start : start + 200]]
        # ldd exits 1 when one argument is not dynamic (a static .so helper): keep going.
        answer = subprocess.run(
            [ldd, *chunk], capture_output=True, text=True, timeout=600, check=False
        )
        for line in answer.stdout.splitlines():
            parts = line.strip().split()
            if "=>" in parts and len(parts) >= 3 and parts[2].startswith("/"):
                library = Path(parts[2])
            elif parts and parts[0].startswith("/") and "ld-linux" in parts[0]:
                library = Path(parts[0])
            else:
                continue
            if any(library.is_relative_to(root) for root in inside):
                continue
            found.setdefault(library.name, library)
    for name in GLIBC_LIBRARIES:
        for directory in MULTIARCH_DIRS:
            if name not in found and (directory / name).exists():
                found[name] = directory / name
    return found


# The leaf package of what the separate processes share (gpuplane.shared).
SHARED_PACKAGE = "shared"

# Part of every image's content key: bump it when what the builder writes changes.
BUILDER_VERSION = "5"


@dataclass(frozen=True)
class PythonImage:
    names: tuple[str, ...]
    module: str
    arguments: tuple[str, ...]
    env: tuple[str, ...] = ()
    user: str = "65532:65532"


def package_sources(package: Path) -> list[Path]:
    """The sources an image carries of gpuplane: the parent package's ``__init__``, the
    ``shared`` package every service may import, and the service's own package."""
    parent = package.parent
    shared = sorted((parent / SHARED_PACKAGE).rglob("*.py"))
    return [parent / "__init__.py", *shared, *sorted(package.rglob("*.py"))]


def _content_key(image: PythonImage, environment: Environment, sources: list[Path]) -> str:
    """What the image is made of: the builder, how it starts (names, module, arguments,
    environment, user), the interpreter and every distribution's version, the sources."""
    key = hashlib.sha256(BUILDER_VERSION.encode())
    started = [image.names, image.module, image.arguments, image.env, image.user]
    facts = [str(environment.executable), environment.versions, started]
    key.update(json.dumps(facts, sort_keys=True).encode())
    for source in sources:
        key.update(source.read_bytes())
    return key.hexdigest()[:12]


def _skeleton(version: str) -> list[Entry]:
    directories = ("usr", "usr/bin", "usr/lib", LIBRARY_DIR, "usr/lib64", "usr/local",
                   "usr/local/bin", "usr/local/lib", f"usr/local/lib/python{version}", "opt",
                   "opt/gpuplane", SITE, "etc", "proc", "sys", "dev", "run", "var")  # fmt: skip
    entries = [Entry(d, directory=True, mode=0o755) for d in directories]
    entries.append(Entry("tmp", directory=True, mode=0o1777))
    entries += [
        Entry(link, link=target)
        for link, target in (("bin", "usr/bin"), ("lib", "usr/lib"), ("lib64", "usr/lib64"))
    ]
    entries += [
        Entry(
            "etc/passwd",
            b"root:x:0:0:root:/root:/bin/false\nservice:x:65532:65532::/tmp:/bin/false\n",
        ),
        Entry("etc/group", b"root:x:0:\nservice:x:65532:\n"),
        Entry("etc/hosts", b"127.0.0.1 localhost\n"),
    ]
    return entries


def _interpreter(environment: Environment) -> tuple[list[Entry], list[Path]]:
    """The executable and the standard library; Python finds its library from the
    executable's prefix, so both move under /usr/local."""
    version = environment.version
    lib = f"usr/local/lib/python{version}"
    entries = [
        Entry(f"usr/local/bin/python{version}", source=environment.executable, mode=0o755),
        Entry("usr/local/bin/python3", link=f"python{version}"),
    ]
    binaries = [environment.executable]
    for source in _stdlib_files(environment.stdlib):
        relative = source.relative_to(environment.stdlib).as_posix()
        native = source.suffix == ".so"
        entries.append(Entry(f"{lib}/{relative}", source=source, mode=0o755 if native else 0o644))
        if native:
            binaries.append(source)
    return entries, binaries


def _site(environment: Environment) -> tuple[list[Entry], list[Path], set[Path]]:
    """The distributions' files under one site directory, their native libraries, and the
    site directories they came from."""
    entries: list[Entry] = []
    binaries: list[Path] = []
    roots: set[Path] = set()
    for path, relative in environment.files:
        if not path.is_file() or "__pycache__" in relative or relative.startswith(".."):
            continue
        roots.add(Path(str(path)[: -len(relative)]))
        native = ".so" in path.name and _is_elf(path)
        entries.append(Entry(f"{SITE}/{relative}", source=path, mode=0o755 if native else 0o644))
        if native:
            binaries.append(path)
    return entries, binaries, roots


def _package(sources: list[Path]) -> list[Entry]:
    """``sources`` (see :func:`package_sources`) under the image's site directory."""
    site_root = sources[0].parent.parent  # the directory that holds gpuplane/
    return [
        Entry(f"{SITE}/{source.relative_to(site_root).as_posix()}", source=source)
        for source in sources
    ]


def _libraries(libraries: dict[str, Path]) -> list[Entry]:
    entries = [
        Entry(f"{LIBRARY_DIR}/{name}", source=library.resolve(), mode=0o755)
        for name, library in libraries.items()
    ]
    entries += [
        Entry(f"usr/lib64/{name}", link=f"../lib/{MULTIARCH}/{name}")
        for name in libraries
        if name.startswith("ld-linux")
    ]
    return entries


def python_image_entries(environment: Environment, sources: list[Path]) -> tuple[Entry, ...]:
    """Every path of the image; ``sources`` are gpuplane's files it carries."""
    interpreter, interpreter_binaries = _interpreter(environment)
    site, site_binaries, roots = _site(environment)
    libraries = shared_libraries(interpreter_binaries + site_binaries, (*roots, environment.stdlib))
    entries: dict[str, Entry] = {}
    for entry in (
        *_skeleton(environment.version), *interpreter, *site, *_package(sources),
        *_libraries(libraries),
    ):  # fmt: skip
        entries[entry.path] = entry
    return with_parents(entries.values())


def with_parents(entries: Iterable[Entry]) -> tuple[Entry, ...]:
    """``entries`` and every file's parent directory (with sane modes) the layer lacks."""
    by_path = {entry.path: entry for entry in entries}
    for path in list(by_path):
        parts = path.split("/")[:-1]
        for depth in range(1, len(parts) + 1):
            parent = "/".join(parts[:depth])
            by_path.setdefault(parent, Entry(parent, directory=True, mode=0o755))
    return tuple(by_path.values())


def build_python_image(
    image: PythonImage,
    environment: Environment,
    sources: list[Path],
    images: Path,
    stem: str,
    *,
    compress: bool = True,
) -> Path:
    """Write the image (once per content: the interpreter, the distributions' versions and
    the package's sources make the file name) and return its OCI layout tar."""
    target = images / f"{stem}-{_content_key(image, environment, sources)}.oci.tar"
    if target.is_file():
        return target
    images.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=images, prefix=f".{stem}-bytecode-") as scratch:
        files = python_image_entries(environment, sources)
        compiled = bytecode_entries(environment.executable, files, Path(scratch))
        _write(image, environment, with_parents((*files, *compiled)), target, compress=compress)
    return target


def _write(
    image: PythonImage,
    environment: Environment,
    entries: tuple[Entry, ...],
    target: Path,
    *,
    compress: bool,
) -> None:
    spec = ImageSpec(
        names=image.names,
        entries=entries,
        entrypoint=(f"/usr/local/bin/python{environment.version}", "-m", image.module),
        command=image.arguments,
        env=(
            "PATH=/usr/local/bin:/usr/bin:/bin",
            f"PYTHONPATH=/{SITE}",
            "PYTHONNOUSERSITE=1",
            "PYTHONDONTWRITEBYTECODE=1",
            "PYTHONUNBUFFERED=1",
            "LD_LIBRARY_PATH=/usr/local/nvidia/lib64:/usr/local/nvidia/lib",
            *image.env,
        ),
        user=image.user,
        working_dir="/tmp",  # noqa: S108 - inside the image: its only writable place
        compress=compress,
    )
    write_layout(spec, target)
