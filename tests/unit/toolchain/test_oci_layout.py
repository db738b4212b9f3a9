"""The offline image writer: an OCI layout tar whose index names the image (containerd
reads io.containerd.image.name on import), whose blobs match their digests, and whose
bytes are the same for the same input (so the cache key is honest)."""

from __future__ import annotations

import gzip
import io
import json
import tarfile
from pathlib import Path

from gpuplane.toolchain.oci_layout import Entry, ImageSpec, digest, write_layout

SPEC = ImageSpec(
    names=("registry.k8s.io/pause:3.10.1", "registry.k8s.io/pause:3.10"),
    entries=(
        Entry("bin", directory=True),
        Entry("bin/pause", b"\x7fELF...", mode=0o755),
        Entry("sbin", link="bin"),
    ),
    entrypoint=("/bin/pause",),
    user="65535:65535",
)


def read(tar: Path) -> dict[str, bytes]:
    with tarfile.open(tar) as layout:
        return {m.name: layout.extractfile(m).read() for m in layout.getmembers() if m.isfile()}  # type: ignore[union-attr]


def test_layout_is_valid_and_names_every_tag(tmp_path: Path) -> None:
    manifest_digest = write_layout(SPEC, tmp_path / "pause.tar")
    files = read(tmp_path / "pause.tar")
    assert json.loads(files["oci-layout"]) == {"imageLayoutVersion": "1.0.0"}
    index = json.loads(files["index.json"])
    names = [m["annotations"]["io.containerd.image.name"] for m in index["manifests"]]
    assert names == list(SPEC.names)
    assert {m["digest"] for m in index["manifests"]} == {manifest_digest}
    for name, data in files.items():
        if name.startswith("blobs/sha256/"):
            assert digest(data) == "sha256:" + name.rsplit("/", 1)[1]
    manifest = json.loads(files["blobs/sha256/" + manifest_digest.removeprefix("sha256:")])
    layer = files["blobs/sha256/" + manifest["layers"][0]["digest"].removeprefix("sha256:")]
    config = json.loads(
        files["blobs/sha256/" + manifest["config"]["digest"].removeprefix("sha256:")]
    )
    raw = gzip.decompress(layer)
    assert config["rootfs"]["diff_ids"] == [digest(raw)]
    assert config["config"]["Entrypoint"] == ["/bin/pause"]
    assert config["config"]["User"] == "65535:65535"
    with tarfile.open(fileobj=io.BytesIO(raw)) as fs:
        members = {m.name: m for m in fs.getmembers()}
    assert members["bin/pause"].mode == 0o755
    assert members["sbin"].issym() and members["sbin"].linkname == "bin"


def test_same_input_same_bytes(tmp_path: Path) -> None:
    write_layout(SPEC, tmp_path / "a.tar")
    write_layout(SPEC, tmp_path / "b.tar")
    assert (tmp_path / "a.tar").read_bytes() == (tmp_path / "b.tar").read_bytes()
