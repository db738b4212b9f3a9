"""The downscaler's Kubernetes requests (besides kopf's watches and the Lease): the one
atomic Deployment write per action, a Deployment re-read after a conflict, the policy
status and Events. Every request passes the client-side limits (QPS, burst, in flight)
and is counted in the operator's metrics."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Protocol

from lightkube import AsyncClient
from lightkube.core.exceptions import ApiError
from lightkube.models.core_v1 import EventSource, ObjectReference
from lightkube.models.meta_v1 import ObjectMeta
from lightkube.resources.apps_v1 import Deployment
from lightkube.resources.core_v1 import Event
from lightkube.types import PatchType

from gpuplane.downscaler.ledger import ANNOTATION
from gpuplane.downscaler.metrics import OperatorMetrics
from gpuplane.downscaler.ratelimit import RequestLimits
from gpuplane.downscaler.resource import DownscalePolicy, ObjectRef

COMPONENT = "gpuplane-downscaler"
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


class KubeApi:
    def __init__(
        self, client: AsyncClient, limits: RequestLimits, metrics: OperatorMetrics
    ) -> None:
        self._client = client
        self._limits = limits
        self._metrics = metrics

    async def patch_deployment(
        self, namespace: str, name: str, patch: dict[str, Any]
    ) -> dict[str, Any]:
        """Apply ``deployment_patch``; the object as written. Conflict / Gone otherwise."""

        async def send() -> Deployment:
            return await self._client.patch(
                Deployment, name, patch, namespace=namespace, patch_type=PatchType.MERGE
            )

        written = await self._deployment_call(send)
        return dict(written.to_dict())

    async def get_deployment(self, namespace: str, name: str) -> dict[str, Any]:
        async def send() -> Deployment:
            return await self._client.get(Deployment, name, namespace=namespace)

        found = await self._deployment_call(send)
        return dict(found.to_dict())

    async def _deployment_call(self, send: Any) -> Deployment:
        try:
            result: Deployment = await self._limits.run(send)
        except ApiError as error:
            if error.status.code == CONFLICT:
                raise Conflict(str(error.status.message)) from error
            if error.status.code == NOT_FOUND:
                raise Gone(str(error.status.message)) from error
            raise
        return result

    async def patch_status(self, namespace: str, name: str, status: dict[str, Any]) -> None:
        async def send() -> object:
            return await self._client.patch(
                DownscalePolicy.Status,
                name,
                {"status": status},
                namespace=namespace,
                patch_type=PatchType.MERGE,
            )

        await self._limits.run(send)

    async def event(
        self,
        involved: ObjectRef,
        reason: str,
        message: str,
        now: datetime,
        *,
        warning: bool = False,
    ) -> None:
        event = Event(
            metadata=ObjectMeta(generateName=f"{involved.name}.", namespace=involved.namespace),
            involvedObject=ObjectReference(
                apiVersion=involved.api_version,
                kind=involved.kind,
                name=involved.name,
                namespace=involved.namespace,
                uid=involved.uid or None,
            ),
            reason=reason,
            message=message[:1024],
            type="Warning" if warning else "Normal",
            source=EventSource(component=COMPONENT),
            reportingComponent=COMPONENT,
            firstTimestamp=now,
            lastTimestamp=now,
            count=1,
        )

        async def send() -> object:
            return await self._client.create(event)

        await self._limits.run(send)


def count_requests(client: AsyncClient, metrics: OperatorMetrics) -> None:
    """Count every request of this client and its bytes both ways (kopf's watch streams
    use their own connection and are not counted). lightkube keeps its httpx client
    private; without one this counts nothing rather than failing."""
    transport = getattr(getattr(client, "_client", None), "_client", None)
    hooks = getattr(transport, "event_hooks", None)
    if not isinstance(hooks, dict):
        return

    async def on_response(response: Any) -> None:
        await response.aread()
        request = response.request
        metrics.kube_requests.labels(request.method).inc()
        metrics.kube_bytes.labels("sent").inc(len(request.content or b""))
        metrics.kube_bytes.labels("received").inc(len(response.content or b""))

    hooks.setdefault("response", []).append(on_response)
