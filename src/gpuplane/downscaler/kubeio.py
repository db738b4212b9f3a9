"""Kubernetes writes of the downscaler: /scale, the ledger annotation, policy status,
events. Everything goes through one async lightkube client."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from lightkube import AsyncClient
from lightkube.generic_resource import create_namespaced_resource
from lightkube.models.core_v1 import EventSource, ObjectReference
from lightkube.models.meta_v1 import ObjectMeta
from lightkube.resources.apps_v1 import Deployment
from lightkube.resources.core_v1 import Event
from lightkube.types import PatchType

from gpuplane.downscaler.ledger import ANNOTATION

GROUP, VERSION, KIND, PLURAL = "gpuplane.io", "v1alpha1", "DownscalePolicy", "downscalepolicies"
DownscalePolicy = create_namespaced_resource(GROUP, VERSION, KIND, PLURAL)
COMPONENT = "gpuplane-downscaler"


def timestamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


class KubeWriter:
    def __init__(self, client: AsyncClient) -> None:
        self._client = client

    async def scale(self, namespace: str, name: str, replicas: int) -> None:
        await self._client.patch(
            Deployment.Scale,
            name,
            {"spec": {"replicas": replicas}},
            namespace=namespace,
            patch_type=PatchType.MERGE,
        )

    async def write_ledger(self, namespace: str, name: str, original: int | None) -> None:
        """Set (or with None, remove) the original-replicas annotation."""
        value = None if original is None else str(original)
        await self._client.patch(
            Deployment,
            name,
            {"metadata": {"annotations": {ANNOTATION: value}}},
            namespace=namespace,
            patch_type=PatchType.MERGE,
        )

    async def patch_status(self, namespace: str, name: str, status: dict[str, Any]) -> None:
        await self._client.patch(
            DownscalePolicy.Status,
            name,
            {"status": status},
            namespace=namespace,
            patch_type=PatchType.MERGE,
        )

    async def event(
        self,
        involved: dict[str, str],
        reason: str,
        message: str,
        now: datetime,
        *,
        warning: bool = False,
    ) -> None:
        """A core/v1 Event on ``involved`` (apiVersion, kind, name, namespace, uid)."""
        event = Event(
            metadata=ObjectMeta(
                generateName=f"{involved['name']}.", namespace=involved["namespace"]
            ),
            involvedObject=ObjectReference(
                apiVersion=involved["apiVersion"],
                kind=involved["kind"],
                name=involved["name"],
                namespace=involved["namespace"],
                uid=involved.get("uid"),
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
        await self._client.create(event)
