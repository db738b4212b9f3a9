"""Apply YAML manifests with server-side apply (the platform's add-ons, both backends)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from lightkube import Client, codecs
from lightkube.core.exceptions import LoadResourceError
from lightkube.generic_resource import load_in_cluster_generic_resources

from gpuplane.kube.client import FIELD_MANAGER


def apply_files(client: Client, files: list[Path]) -> list[str]:
    """Apply every document of ``files`` in order; return 'Kind/name' of each.

    Custom resources are resolved from the CRDs the cluster serves, loaded on first need.
    """
    applied = []
    crds_loaded = False
    for file in files:
        for document in yaml.safe_load_all(file.read_text(encoding="utf-8")):
            if not document:
                continue
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
