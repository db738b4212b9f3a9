"""Apply YAML manifests with server-side apply (the platform's add-ons, both backends)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml
from lightkube import Client, codecs
from lightkube.core.exceptions import ApiError, LoadResourceError
from lightkube.generic_resource import load_in_cluster_generic_resources
from lightkube.types import CascadeType

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
    """Apply ``documents`` in order with server-side apply; return 'Kind/name' of each."""
    applied = []
    for obj in _objects(client, documents):
        client.apply(obj, field_manager=FIELD_MANAGER, force=True)
        applied.append(f"{obj.kind}/{obj.metadata.name}")
    return applied


def delete_files(client: Client, files: list[Path]) -> list[str]:
    """Delete what ``files`` describe, dependents too (a Job's pods); absent objects are
    skipped. Return 'Kind/name' of each deleted."""
    deleted = []
    for obj in _objects(client, read_documents(files)):
        try:
            client.delete(
                type(obj),
                obj.metadata.name,
                namespace=obj.metadata.namespace,
                cascade=CascadeType.BACKGROUND,
            )
        except ApiError as error:
            if error.status.code != 404:
                raise
            continue
        deleted.append(f"{obj.kind}/{obj.metadata.name}")
    return deleted


def _objects(client: Client, documents: list[dict[str, Any]]) -> Iterator[Any]:
    """``documents`` as lightkube objects, one at a time: a custom resource is resolved
    from the CRDs the cluster serves when first needed, so a CRD applied earlier in the
    same list counts."""
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
        yield obj
