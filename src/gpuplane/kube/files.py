"""Credential files: written readable by their owner only."""

from __future__ import annotations

import os
from pathlib import Path

import yaml


def write_private(path: Path, document: dict[str, object]) -> None:
    """Write a credential file readable by its owner only (0600 from the first byte)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        handle.write(yaml.safe_dump(document))
    path.chmod(0o600)
