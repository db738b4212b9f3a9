"""Clients for a kubeconfig: typed (lightkube) for resources, raw HTTP for /readyz, /version.

``trust_env`` is off: a proxy from the environment must never carry traffic meant for a
loopback API server.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path

import httpx2
import yaml
from lightkube import Client, KubeConfig
from lightkube.config.client_adapter import Client as HttpClient
from lightkube.config.client_adapter import ConnectionParams
from lightkube.config.kubeconfig import SingleConfig
from lightkube.core.exceptions import ConfigError

from gpuplane.errors import PrerequisiteError

FIELD_MANAGER = "gpuplane"


class ClusterUnreachableError(PrerequisiteError):
    """The kubeconfig is missing or its API server does not answer."""


def _config(kubeconfig: Path) -> SingleConfig:
    try:
        config = KubeConfig.from_file(str(kubeconfig)).get()
    except (
        OSError,
        ConfigError,
        yaml.YAMLError,
        TypeError,
        KeyError,
        ValueError,
        AttributeError,
    ) as error:
        # A kubeconfig being written (empty, or kwokctl's "contexts: null") or broken.
        raise ClusterUnreachableError(f"cannot use kubeconfig {kubeconfig}: {error}") from error
    if config is None:
        raise ClusterUnreachableError(f"kubeconfig {kubeconfig} has no current context")
    return config


def connect(kubeconfig: Path, *, timeout: float = 30.0) -> Client:
    """A typed client for ``kubeconfig``."""
    return Client(
        config=_config(kubeconfig),
        field_manager=FIELD_MANAGER,
        timeout=httpx2.Timeout(timeout),
        trust_env=False,
    )


def http_client(kubeconfig: Path, *, timeout: float = 10.0) -> httpx2.Client:
    """An HTTP client with the kubeconfig's server, CA and credentials, for raw paths."""
    params = ConnectionParams(timeout=httpx2.Timeout(timeout), trust_env=False)
    return HttpClient(_config(kubeconfig), params)


def get_raw(kubeconfig: Path, path: str, *, timeout: float = 10.0) -> str:
    """GET ``path`` (like ``kubectl get --raw``); raise ClusterUnreachableError if it fails."""
    try:
        with http_client(kubeconfig, timeout=timeout) as client:
            response = client.get(path)
    except httpx2.HTTPError as error:
        raise ClusterUnreachableError(
            f"API server of {kubeconfig} did not answer: {error}"
        ) from error
    if response.status_code != 200:
        raise ClusterUnreachableError(
            f"GET {path} answered {response.status_code}: {response.text}"
        )
    return response.text


def version_of(version_json: str) -> str | None:
    """gitVersion from the body of /version."""
    try:
        value = json.loads(version_json).get("gitVersion")
    except (ValueError, AttributeError):
        return None
    return value if isinstance(value, str) else None


def is_reachable(kubeconfig: Path, *, timeout: float = 5.0) -> bool:
    """True when the API server of ``kubeconfig`` answers /readyz with ok."""
    if not kubeconfig.is_file():
        return False
    try:
        return get_raw(kubeconfig, "/readyz", timeout=timeout).strip() == "ok"
    except ClusterUnreachableError:
        return False


def wait_reachable(
    kubeconfig: Path,
    *,
    timeout: float = 120.0,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> None:
    """Poll /readyz until it says ok; raise ClusterUnreachableError after ``timeout``."""
    deadline = clock() + timeout
    while not is_reachable(kubeconfig, timeout=2.0):
        if clock() > deadline:
            raise ClusterUnreachableError(
                f"the API server of {kubeconfig} was not ready within {timeout:.0f}s"
            )
        sleep(0.05)
