"""One aiohttp session to one Kubernetes API server, from a kubeconfig context: its
server, CA, client certificate and bearer token (or a token file, re-read as projected
ServiceAccount tokens rotate). The downscaler and the activator make every request to the
API server through it, watches included: one HTTP client stack per process.

aiohttp rather than httpx: a request costs about a quarter of the CPU (measured for the
downscaler, whose cycle at 1,000 Deployments is 1,000 requests from one Python thread).
"""

from __future__ import annotations

import time
from pathlib import Path

import aiohttp
from lightkube import ConfigError, KubeConfig
from lightkube.config.client_adapter import verify_cluster
from lightkube.config.kubeconfig import SingleConfig

JSON = "application/json"
MERGE_PATCH = "application/merge-patch+json"
TOKEN_REREAD_SECONDS = 60.0


class UnsupportedCredentials(ValueError):
    """The kubeconfig's user authenticates in a way we do not serve (exec, basic)."""


def current_context(kubeconfig: str | None) -> SingleConfig:
    """The kubeconfig file's current context (in-cluster or $KUBECONFIG without a file);
    lightkube's ConfigError (or OSError) when there is none."""
    config = KubeConfig.from_file(kubeconfig) if kubeconfig else KubeConfig.from_env()
    current = config.get()
    if current is None:
        raise ConfigError("the kubeconfig has no current context")
    return current


class KubeSession:
    def __init__(
        self, config: SingleConfig, *, timeout: float = 30.0, connections: int = 20
    ) -> None:
        user = config.user
        if user is None:
            raise UnsupportedCredentials("the kubeconfig context has no user")
        if user.exec or (user.username and user.password) or user.auth_provider:
            raise UnsupportedCredentials(
                "gpuplane's services authenticate with a client certificate, a token or a "
                "token file (in-cluster); this kubeconfig's user uses another method"
            )
        self.server = config.cluster.server.rstrip("/")
        self._ssl = verify_cluster(config.cluster, user, config.abs_file, trust_env=False)
        self._token = user.token
        self._token_file = Path(str(config.abs_file(user.token_file))) if user.token_file else None
        self._token_read = 0.0
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._connections = connections
        self._session: aiohttp.ClientSession | None = None

    def headers(self, content_type: str = JSON) -> dict[str, str]:
        if (
            self._token_file is not None
            and time.monotonic() - self._token_read > TOKEN_REREAD_SECONDS
        ):
            self._token = self._token_file.read_text(encoding="utf-8").strip()
            self._token_read = time.monotonic()
        headers = {"Content-Type": content_type, "Accept": JSON}
        if self._token:
            headers["Authorization"] = f"Bearer {self._token}"
        return headers

    def url(self, path: str) -> str:
        return self.server + path

    def session(self) -> aiohttp.ClientSession:
        # Made inside the running loop; trust_env off: no proxy for the API server.
        if self._session is None:
            connector = aiohttp.TCPConnector(ssl=self._ssl, limit=self._connections)
            self._session = aiohttp.ClientSession(
                connector=connector, timeout=self._timeout, trust_env=False
            )
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
