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


def user_kubeconfig(
    admin_kubeconfig: Path, user: str, credentials: dict[str, str]
) -> dict[str, object]:
    """The admin kubeconfig's cluster (server, CA) with ``credentials`` (a token, or a
    client certificate and key) as its only user: how a ServiceAccount or a kubelet node
    gets a kubeconfig of its own."""
    admin = yaml.safe_load(admin_kubeconfig.read_text(encoding="utf-8"))
    context_name = admin["current-context"]
    context = next(c["context"] for c in admin["contexts"] if c["name"] == context_name)
    cluster = next(c for c in admin["clusters"] if c["name"] == context["cluster"])
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [cluster],
        "users": [{"name": user, "user": credentials}],
        "contexts": [{"name": user, "context": {"cluster": cluster["name"], "user": user}}],
        "current-context": user,
    }
