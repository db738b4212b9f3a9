"""Apply YAML manifests with server-side apply (the platform's add-ons, both backends)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from lightkube import Client, codecs
from lightkube.core.exceptions import LoadResourceError
from lightkube.generic_resource import load_in_cluster_generic_resources

from gpuplane.kube.client import FIELD_MANAGER


def read_documents(files: list[Path]) -> list[dict[str, Any]]:
    """Every non-empty YAML document of ``files``, in order."""
    return [
        document
        for file in files
        for document in yaml.safe_load_all(file.read_text(encoding="utf-8"))
        if document
    ]


def apply_files(client: Client, files: list[Path]) -> list[str]:
    """Apply every document of ``files`` in order; return 'Kind/name' of each."""
    return apply_documents(client, read_documents(files))


def apply_documents(client: Client, documents: list[dict[str, Any]]) -> list[str]:
    """Apply ``documents`` in order with server-side apply; return 'Kind/name' of each.

    Custom resources are resolved from the CRDs the cluster serves, loaded on first need.
    """
    applied = []
    crds_loaded = False
    for document in documents:
        try:
            obj: Any = codecs.from_dict(document)
        except LoadResourceError:
            if crds_loaded:
                raise
            load_in_cluster_generic_resources(client)
            crds_loaded = True
            obj = codecs.from_dict(document)
        client.apply(obj, field_manager=FIELD_MANAGER, force=True)
        applied.append(f"{document.get('kind')}/{document.get('metadata', {}).get('name')}")
    return applied
