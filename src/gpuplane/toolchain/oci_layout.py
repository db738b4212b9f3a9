"""Write an OCI image layout (a tar ``containerd``'s ``ctr images import`` reads) from files
given in memory or on disk: one layer, deterministic (fixed mtimes, sorted), no registry
anywhere. Layers are streamed through temporary files, so a multi-gigabyte root (torch
with its CUDA libraries) never sits in memory.

The same bytes in give the same digests out, so an image is rebuilt only when what goes
into it changed.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import shutil
import tarfile
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

# 2023-11-14T22:13:20Z: every file's mtime, so layers are reproducible.
EPOCH = 1_700_000_000
CREATED = "2023-11-14T22:13:20Z"
MANIFEST_TYPE = "application/vnd.oci.image.manifest.v1+json"
CONFIG_TYPE = "application/vnd.oci.image.config.v1+json"
LAYER_TYPE = "application/vnd.oci.image.layer.v1.tar+gzip"
RAW_LAYER_TYPE = "application/vnd.oci.image.layer.v1.tar"
CHUNK = 1024 * 1024


@dataclass(frozen=True)
class Entry:
    """One path of the image's filesystem: a file (``data``, or the host file ``source``),
    directory or symlink."""

    path: str
    data: bytes = b""
    mode: int = 0o644
    directory: bool = False
    link: str = ""
    source: Path | None = None


@dataclass(frozen=True)
class ImageSpec:
    names: tuple[str, ...]
    entries: tuple[Entry, ...]
    entrypoint: tuple[str, ...] = ()
    command: tuple[str, ...] = ()
    env: tuple[str, ...] = ("PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",)
    user: str = ""
    labels: dict[str, str] = field(default_factory=dict)
    working_dir: str = "/"
    # gzip costs minutes on gigabytes of incompressible weights; an image assembled and
    # imported on one host does not travel, so it may stay uncompressed.
    compress: bool = True


def digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


class _Hashing:
    """A write-only file that hashes and counts what goes through it."""

    def __init__(self, target: IO[bytes]) -> None:
        self.target, self.sha, self.size = target, hashlib.sha256(), 0

    def write(self, data: bytes) -> int:
        self.sha.update(data)
        self.size += len(data)
        return self.target.write(data)

    def flush(self) -> None:
        self.target.flush()

    @property
    def digest(self) -> str:
        return "sha256:" + self.sha.hexdigest()


def _write_layer(entries: tuple[Entry, ...], out: _Hashing) -> None:
    with tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT) as layer:  # type: ignore[call-overload]
        for entry in sorted(entries, key=lambda e: e.path):
            info = tarfile.TarInfo(entry.path)
            info.mtime, info.uid, info.gid, info.uname, info.gname = EPOCH, 0, 0, "root", "root"
            if entry.directory:
                info.type, info.mode = tarfile.DIRTYPE, entry.mode or 0o755
                layer.addfile(info)
            elif entry.link:
                info.type, info.mode, info.linkname = tarfile.SYMTYPE, 0o777, entry.link
                layer.addfile(info)
            elif entry.source is not None:
                info.mode, info.size = entry.mode, entry.source.stat().st_size
                with entry.source.open("rb") as data:
                    layer.addfile(info, data)
            else:
                info.mode, info.size = entry.mode, len(entry.data)
                layer.addfile(info, io.BytesIO(entry.data))


def _json(document: dict[str, Any]) -> bytes:
    return json.dumps(document, sort_keys=True, separators=(",", ":")).encode()


@dataclass(frozen=True)
class _Layer:
    file: Path
    digest: str
    size: int
    diff_id: str
    media_type: str


def _build_layer(spec: ImageSpec, work: Path) -> _Layer:
    raw_path = work / "layer.tar"
    with raw_path.open("wb") as raw_file:
        raw = _Hashing(raw_file)
        _write_layer(spec.entries, raw)
    if not spec.compress:
        return _Layer(raw_path, raw.digest, raw.size, raw.digest, RAW_LAYER_TYPE)
    gz_path = work / "layer.tar.gz"
    with gz_path.open("wb") as gz_file:
        packed = _Hashing(gz_file)
        with (
            raw_path.open("rb") as source,
            gzip.GzipFile(fileobj=packed, mode="wb", compresslevel=9, mtime=0) as gz,
        ):
            shutil.copyfileobj(source, gz, CHUNK)
    raw_path.unlink()
    return _Layer(gz_path, packed.digest, packed.size, raw.digest, LAYER_TYPE)


def _documents(spec: ImageSpec, layer: _Layer) -> tuple[bytes, bytes, bytes]:
    """(index, manifest, config) describing ``layer``."""
    runtime: dict[str, Any] = {"Env": list(spec.env), "WorkingDir": spec.working_dir}
    if spec.entrypoint:
        runtime["Entrypoint"] = list(spec.entrypoint)
    if spec.command:
        runtime["Cmd"] = list(spec.command)
    if spec.user:
        runtime["User"] = spec.user
    if spec.labels:
        runtime["Labels"] = dict(spec.labels)
    config = _json(
        {
            "created": CREATED,
            "architecture": "amd64",
            "os": "linux",
            "config": runtime,
            "rootfs": {"type": "layers", "diff_ids": [layer.diff_id]},
            "history": [{"created": CREATED, "created_by": "gpuplane image build"}],
        }
    )
    manifest = _json(
        {
            "schemaVersion": 2,
            "mediaType": MANIFEST_TYPE,
            "config": {"mediaType": CONFIG_TYPE, "digest": digest(config), "size": len(config)},
            "layers": [{"mediaType": layer.media_type, "digest": layer.digest, "size": layer.size}],
        }
    )
    index = _json(
        {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "manifests": [
                {
                    "mediaType": MANIFEST_TYPE,
                    "digest": digest(manifest),
                    "size": len(manifest),
                    "platform": {"architecture": "amd64", "os": "linux"},
                    # containerd names the image from this annotation on import.
                    "annotations": {
                        "io.containerd.image.name": name,
                        "org.opencontainers.image.ref.name": name,
                    },
                }
                for name in spec.names
            ],
        }
    )
    return index, manifest, config


def write_layout(spec: ImageSpec, target: Path) -> str:
    """Write ``spec`` as an OCI layout tar at ``target``; return its manifest digest."""
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_suffix(".partial")
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=".layer-") as work:
        layer = _build_layer(spec, Path(work))
        index, manifest, config = _documents(spec, layer)
        with tarfile.open(partial, "w", format=tarfile.PAX_FORMAT) as out:

            def put(name: str, data: IO[bytes], size: int) -> None:
                info = tarfile.TarInfo(name)
                info.size, info.mtime, info.mode = size, EPOCH, 0o644
                out.addfile(info, data)

            for name, blob in (
                ("oci-layout", b'{"imageLayoutVersion":"1.0.0"}'),
                ("index.json", index),
                ("blobs/sha256/" + digest(config).removeprefix("sha256:"), config),
                ("blobs/sha256/" + digest(manifest).removeprefix("sha256:"), manifest),
            ):
                put(name, io.BytesIO(blob), len(blob))
            with layer.file.open("rb") as data:
                put("blobs/sha256/" + layer.digest.removeprefix("sha256:"), data, layer.size)
    partial.replace(target)
    return digest(manifest)


def layout_names(tar: Path) -> tuple[str, ...]:
    """The image names an OCI layout tar's index carries (what containerd imports as)."""
    with tarfile.open(tar) as layout:
        member = layout.extractfile("index.json")
        if member is None:
            raise ValueError(f"{tar}: index.json is not a file")
        index = json.loads(member.read())
    return tuple(
        str(m["annotations"]["io.containerd.image.name"])
        for m in index.get("manifests", [])
        if "io.containerd.image.name" in (m.get("annotations") or {})
    )
