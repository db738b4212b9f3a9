"""The downscaler's Kubernetes requests (besides kopf's watches and the Lease): the one
atomic Deployment write per action, a Deployment re-read after a conflict, the policy
status and Events. Every request passes the client-side limits (QPS, burst, in flight)
and is counted in the operator's metrics."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Protocol

from gpuplane.downscaler.kube_http import KubeHttp
from gpuplane.downscaler.ledger import ANNOTATION
from gpuplane.downscaler.ratelimit import RequestLimits
from gpuplane.downscaler.resource import GROUP, PLURAL, VERSION, ObjectRef
from gpuplane.shared.kube_time import format_time
from gpuplane.shared.wake_annotation import WAKE_REQUEST_ANNOTATION

COMPONENT = "gpuplane-downscaler"
FIELD_MANAGER = {"fieldManager": COMPONENT}
NOT_FOUND, CONFLICT = 404, 409


class Conflict(Exception):
    """The Deployment changed since it was read (its resourceVersion moved on)."""


class Gone(Exception):
    """The Deployment no longer exists."""


def deployment_patch(
    resource_version: str, *, replicas: int | None, ledger: int | None
) -> dict[str, Any]:
    """One merge patch: the ledger annotation (None removes it) and, when given, replicas;
    any wake request is cleared in the same write (it is answered, or predates this action).

    The resourceVersion makes it conditional: the API server applies it only to the
    object that was decided on, or answers 409.
    """
    patch: dict[str, Any] = {
        "metadata": {
            "resourceVersion": resource_version,
            "annotations": {
                ANNOTATION: None if ledger is None else str(ledger),
                WAKE_REQUEST_ANNOTATION: None,
            },
        }
    }
    if replicas is not None:
        patch["spec"] = {"replicas": replicas}
    return patch


class KubeRequests(Protocol):
    """What the cycle and the actuator need of the API server (KubeApi; a fake in tests)."""

    async def patch_deployment(
        self, namespace: str, name: str, patch: dict[str, Any]
    ) -> dict[str, Any]: ...

    async def get_deployment(self, namespace: str, name: str) -> dict[str, Any]: ...

    async def patch_status(self, namespace: str, name: str, status: dict[str, Any]) -> None: ...

    async def event(
        self,
        involved: ObjectRef,
        reason: str,
        message: str,
        now: datetime,
        *,
        warning: bool = False,
    ) -> None: ...


class KubeApiError(Exception):
    """The API server refused a request (other than a conflict or a missing object)."""


class KubeApi:
    """JSON in and out over ``KubeHttp``: a write's answer is read with ``json.loads`` and
    never turned into model objects (at 1,000 actions a cycle, that parse was the
    operator's largest cost)."""

    def __init__(self, http: KubeHttp, limits: RequestLimits) -> None:
        self._http = http
        self._limits = limits

    async def _send(
        self, method: str, path: str, body: dict[str, Any] | None, *, merge: bool = False
    ) -> dict[str, Any]:
        async def send() -> tuple[int, Any]:
            return await self._http.call(method, path, body, merge=merge, params=FIELD_MANAGER)

        status, answer = await self._limits.run(send)
        message = str((answer or {}).get("message", ""))[:500] if isinstance(answer, dict) else ""
        if status == CONFLICT:
            raise Conflict(message)
        if status == NOT_FOUND:
            raise Gone(message)
        if status >= 400 or not isinstance(answer, dict):
            raise KubeApiError(f"{method} {path}: HTTP {status}: {message}")
        return answer

    async def patch_deployment(
        self, namespace: str, name: str, patch: dict[str, Any]
    ) -> dict[str, Any]:
        """Apply ``deployment_patch``; the object as written. Conflict / Gone otherwise."""
        path = f"/apis/apps/v1/namespaces/{namespace}/deployments/{name}"
        return await self._send("PATCH", path, patch, merge=True)

    async def get_deployment(self, namespace: str, name: str) -> dict[str, Any]:
        return await self._send(
            "GET", f"/apis/apps/v1/namespaces/{namespace}/deployments/{name}", None
        )

    async def patch_status(self, namespace: str, name: str, status: dict[str, Any]) -> None:
        path = f"/apis/{GROUP}/{VERSION}/namespaces/{namespace}/{PLURAL}/{name}/status"
        await self._send("PATCH", path, {"status": status}, merge=True)

    async def event(
        self,
        involved: ObjectRef,
        reason: str,
        message: str,
        now: datetime,
        *,
        warning: bool = False,
    ) -> None:
        stamp = format_time(now)
        event = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"generateName": f"{involved.name}.", "namespace": involved.namespace},
            "involvedObject": {
                "apiVersion": involved.api_version,
                "kind": involved.kind,
                "name": involved.name,
                "namespace": involved.namespace,
                **({"uid": involved.uid} if involved.uid else {}),
            },
            "reason": reason,
            "message": message[:1024],
            "type": "Warning" if warning else "Normal",
            "source": {"component": COMPONENT},
            "reportingComponent": COMPONENT,
            "firstTimestamp": stamp,
            "lastTimestamp": stamp,
            "count": 1,
        }
        await self._send("POST", f"/api/v1/namespaces/{involved.namespace}/events", event)
