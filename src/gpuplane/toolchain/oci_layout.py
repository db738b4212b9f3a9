"""Write an OCI image layout (a tar ``containerd``'s ``ctr images import`` reads) from files
given in memory: one layer, deterministic (fixed mtimes, sorted), no registry anywhere.

The same bytes in give the same digests out, so an image is rebuilt only when what goes
into it changed.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import tarfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# 2023-11-14T22:13:20Z: every file's mtime, so layers are reproducible.
EPOCH = 1_700_000_000
CREATED = "2023-11-14T22:13:20Z"
MANIFEST_TYPE = "application/vnd.oci.image.manifest.v1+json"
CONFIG_TYPE = "application/vnd.oci.image.config.v1+json"
LAYER_TYPE = "application/vnd.oci.image.layer.v1.tar+gzip"


@dataclass(frozen=True)
class Entry:
    """One path of the image's filesystem: a file (``data``), directory or symlink."""

    path: str
    data: bytes = b""
    mode: int = 0o644
    directory: bool = False
    link: str = ""


@dataclass(frozen=True)
class ImageSpec:
    names: tuple[str, ...]
    entries: tuple[Entry, ...]
    entrypoint: tuple[str, ...] = ()
    command: tuple[str, ...] = ()
    env: tuple[str, ...] = ("PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",)
    user: str = ""
    labels: dict[str, str] = field(default_factory=dict)


def digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _layer(entries: tuple[Entry, ...]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as layer:
        for entry in sorted(entries, key=lambda e: e.path):
            info = tarfile.TarInfo(entry.path)
            info.mtime, info.uid, info.gid, info.uname, info.gname = EPOCH, 0, 0, "root", "root"
            if entry.directory:
                info.type, info.mode = tarfile.DIRTYPE, entry.mode or 0o755
                layer.addfile(info)
            elif entry.link:
                info.type, info.mode, info.linkname = tarfile.SYMTYPE, 0o777, entry.link
                layer.addfile(info)
            else:
                info.mode, info.size = entry.mode, len(entry.data)
                layer.addfile(info, io.BytesIO(entry.data))
    return buffer.getvalue()


def _json(document: dict[str, Any]) -> bytes:
    return json.dumps(document, sort_keys=True, separators=(",", ":")).encode()


def image_blobs(spec: ImageSpec) -> tuple[bytes, bytes, bytes, bytes]:
    """(index, manifest, config, compressed layer) of ``spec``."""
    raw = _layer(spec.entries)
    compressed = gzip.compress(raw, compresslevel=9, mtime=0)
    runtime: dict[str, Any] = {"Env": list(spec.env), "WorkingDir": "/"}
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
            "rootfs": {"type": "layers", "diff_ids": [digest(raw)]},
            "history": [{"created": CREATED, "created_by": "gpuplane image build"}],
        }
    )
    manifest = _json(
        {
            "schemaVersion": 2,
            "mediaType": MANIFEST_TYPE,
            "config": {"mediaType": CONFIG_TYPE, "digest": digest(config), "size": len(config)},
            "layers": [
                {"mediaType": LAYER_TYPE, "digest": digest(compressed), "size": len(compressed)}
            ],
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
    return index, manifest, config, compressed


def write_layout(spec: ImageSpec, target: Path) -> str:
    """Write ``spec`` as an OCI layout tar at ``target``; return its manifest digest."""
    index, manifest, config, layer = image_blobs(spec)
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_suffix(".partial")
    with tarfile.open(partial, "w", format=tarfile.PAX_FORMAT) as out:

        def put(name: str, data: bytes) -> None:
            info = tarfile.TarInfo(name)
            info.size, info.mtime, info.mode = len(data), EPOCH, 0o644
            out.addfile(info, io.BytesIO(data))

        put("oci-layout", b'{"imageLayoutVersion":"1.0.0"}')
        put("index.json", index)
        for blob in (config, manifest, layer):
            put("blobs/sha256/" + digest(blob).removeprefix("sha256:"), blob)
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
