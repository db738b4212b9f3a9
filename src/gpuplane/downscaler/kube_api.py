"""The downscaler's Kubernetes requests (besides kopf's watches and the Lease): the one
atomic Deployment write per action, a Deployment re-read after a conflict, the policy
status and Events. Every request passes the client-side limits (QPS, burst, in flight)
and is counted in the operator's metrics."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any, Protocol

import httpx2

from gpuplane.downscaler.ledger import ANNOTATION
from gpuplane.downscaler.metrics import OperatorMetrics
from gpuplane.downscaler.ratelimit import RequestLimits
from gpuplane.downscaler.resource import GROUP, PLURAL, VERSION, ObjectRef

COMPONENT = "gpuplane-downscaler"
FIELD_MANAGER = {"fieldManager": COMPONENT}
MERGE_PATCH = "application/merge-patch+json"
NOT_FOUND, CONFLICT = 404, 409


class Conflict(Exception):
    """The Deployment changed since it was read (its resourceVersion moved on)."""


class Gone(Exception):
    """The Deployment no longer exists."""


def deployment_patch(
    resource_version: str, *, replicas: int | None, ledger: int | None
) -> dict[str, Any]:
    """One merge patch: the ledger annotation (None removes it) and, when given, replicas.

    The resourceVersion makes it conditional: the API server applies it only to the
    object that was decided on, or answers 409.
    """
    patch: dict[str, Any] = {
        "metadata": {
            "resourceVersion": resource_version,
            "annotations": {ANNOTATION: None if ledger is None else str(ledger)},
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
    """Raw JSON over one HTTP client: a write's answer is read with ``json.loads`` and
    never turned into model objects (at 1,000 actions a cycle, that parse was the
    operator's largest cost)."""

    def __init__(self, http: httpx2.AsyncClient, limits: RequestLimits) -> None:
        self._http = http
        self._limits = limits

    async def _send(
        self, method: str, path: str, body: dict[str, Any] | None, *, merge: bool = False
    ) -> dict[str, Any]:
        headers = {"Content-Type": MERGE_PATCH if merge else "application/json"}
        content = None if body is None else json.dumps(body, separators=(",", ":"))

        async def send() -> httpx2.Response:
            return await self._http.request(
                method, path, content=content, headers=headers, params=FIELD_MANAGER
            )

        response = await self._limits.run(send)
        if response.status_code == CONFLICT:
            raise Conflict(_message(response))
        if response.status_code == NOT_FOUND:
            raise Gone(_message(response))
        if response.status_code >= 400:
            raise KubeApiError(
                f"{method} {path}: HTTP {response.status_code}: {_message(response)}"
            )
        answer: dict[str, Any] = response.json()
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
        stamp = now.strftime("%Y-%m-%dT%H:%M:%SZ")
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


def _message(response: httpx2.Response) -> str:
    try:
        return str(response.json().get("message", ""))[:500]
    except ValueError:
        return response.text[:500]


def count_requests(http: httpx2.AsyncClient, metrics: OperatorMetrics) -> None:
    """Count every request of this client and its bytes both ways."""

    async def on_response(response: httpx2.Response) -> None:
        await response.aread()
        request = response.request
        metrics.kube_requests.labels(request.method).inc()
        metrics.kube_bytes.labels("sent").inc(len(request.content or b""))
        metrics.kube_bytes.labels("received").inc(len(response.content or b""))

    http.event_hooks.setdefault("response", []).append(on_response)
