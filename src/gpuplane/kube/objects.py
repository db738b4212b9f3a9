"""Objects that may or may not be there: delete or look one up without caring which, and
wait until deletions (asynchronous: finalizers, a namespace's contents) are done."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from lightkube import Client
from lightkube.core.exceptions import ApiError

from gpuplane.errors import OperationError


def _found(action: Callable[..., object], resource: Any, name: str, namespace: str | None) -> bool:
    """``action`` (a client's get or delete) on ``name``; False when it is not there."""
    try:
        action(resource, name, namespace=namespace)
    except ApiError as error:
        if error.status.code == 404:
            return False
        raise
    return True


def deleted(client: Client, resource: Any, name: str, namespace: str | None = None) -> bool:
    """Delete ``name``; False when there was nothing to delete."""
    return _found(client.delete, resource, name, namespace)


def exists(client: Client, resource: Any, name: str, namespace: str | None = None) -> bool:
    return _found(client.get, resource, name, namespace)


def wait_gone(client: Client, objects: list[tuple[Any, str]], timeout: float = 60.0) -> None:
    """Return when every (cluster-scoped) object is gone, or say what is left."""
    deadline = time.monotonic() + timeout
    for resource, name in objects:
        while exists(client, resource, name):
            if time.monotonic() > deadline:
                raise OperationError(f"{resource.__name__} {name} still there after {timeout:.0f}s")
            time.sleep(0.2)
