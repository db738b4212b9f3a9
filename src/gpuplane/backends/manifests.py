"""Apply YAML manifests with server-side apply (the platform's add-ons, both backends)."""

from __future__ import annotations

from pathlib import Path

from lightkube import Client, codecs

from gpuplane.kube.client import FIELD_MANAGER


def apply_files(client: Client, files: list[Path]) -> list[str]:
    """Apply every document of ``files`` in order; return 'Kind/name' of each."""
    applied = []
    for file in files:
        for obj in codecs.load_all_yaml(file.read_text(encoding="utf-8")):
            client.apply(obj, field_manager=FIELD_MANAGER, force=True)
            meta = obj.metadata
            applied.append(f"{type(obj).__name__}/{meta.name if meta else '?'}")
    return applied
