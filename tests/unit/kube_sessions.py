"""A KubeSession (gpuplane.shared.kube_session) for a loopback test server, built from a
kubeconfig document as a real one would be."""

from __future__ import annotations

from typing import Any

from lightkube import KubeConfig
from lightkube.config.kubeconfig import SingleConfig

from gpuplane.shared.kube_session import KubeSession


def context_for(server: str, user: dict[str, Any] | None = None) -> SingleConfig:
    document = {
        "clusters": [{"name": "c", "cluster": {"server": server}}],
        "users": [{"name": "u", "user": user if user is not None else {"token": "t"}}],
        "contexts": [{"name": "x", "context": {"cluster": "c", "user": "u"}}],
        "current-context": "x",
    }
    current = KubeConfig.from_dict(document).get()
    assert current is not None
    return current


def session_for(server: str, user: dict[str, Any] | None = None) -> KubeSession:
    return KubeSession(context_for(server, user))
