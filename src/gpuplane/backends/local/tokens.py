"""A kubeconfig for a ServiceAccount, from a TokenRequest: how the local backend runs the
downscaler out of cluster with exactly the RBAC its deploy files grant."""

from __future__ import annotations

from pathlib import Path

import yaml
from lightkube import Client
from lightkube.models.authentication_v1 import TokenRequestSpec
from lightkube.models.meta_v1 import ObjectMeta
from lightkube.resources.core_v1 import ServiceAccount

TOKEN_SECONDS = 7 * 24 * 3600


def mint_token(client: Client, namespace: str, account: str) -> str:
    request = ServiceAccount.Token(
        metadata=ObjectMeta(name=account, namespace=namespace),
        spec=TokenRequestSpec(audiences=[], expirationSeconds=TOKEN_SECONDS),
    )
    answer = client.create(request, account, namespace=namespace)
    if answer.status is None or not answer.status.token:
        raise RuntimeError(f"TokenRequest for {namespace}/{account} returned no token")
    return str(answer.status.token)


def token_kubeconfig(admin_kubeconfig: Path, token: str, user: str) -> dict[str, object]:
    """The admin kubeconfig's cluster (server, CA) with ``token`` as the only credential."""
    admin = yaml.safe_load(admin_kubeconfig.read_text(encoding="utf-8"))
    context_name = admin["current-context"]
    context = next(c["context"] for c in admin["contexts"] if c["name"] == context_name)
    cluster = next(c for c in admin["clusters"] if c["name"] == context["cluster"])
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [cluster],
        "users": [{"name": user, "user": {"token": token}}],
        "contexts": [{"name": user, "context": {"cluster": cluster["name"], "user": user}}],
        "current-context": user,
    }
