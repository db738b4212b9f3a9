"""A token for a ServiceAccount, from a TokenRequest: how the local backend runs the
downscaler out of cluster with exactly the RBAC its deploy files grant (its kubeconfig is
``kube.files.user_kubeconfig``)."""

from __future__ import annotations

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
