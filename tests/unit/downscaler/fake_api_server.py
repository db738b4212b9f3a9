"""An in-memory stand-in for the API server's Deployments, policy status and Events, with
the one behaviour the downscaler's writes rely on: a merge patch carrying a
resourceVersion applies only to that version (else 409), and every write moves it on."""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from typing import Any

from gpuplane.downscaler.kube_api import Conflict, Gone, KubeApiError
from gpuplane.downscaler.ledger import ANNOTATION
from gpuplane.downscaler.resource import ObjectRef
from gpuplane.downscaler.snapshot import DeploymentSnapshot, snapshot

CREATED = "2026-01-01T00:00:00Z"


def deployment_body(namespace: str, name: str, replicas: int, gpus: int = 0) -> dict[str, Any]:
    limits = {"nvidia.com/gpu": str(gpus)} if gpus else {}
    return {
        "metadata": {
            "namespace": namespace,
            "name": name,
            "uid": f"uid-{name}",
            "labels": {"app": "x"},
            "annotations": {},
            "creationTimestamp": CREATED,
            "resourceVersion": "1",
        },
        "spec": {
            "replicas": replicas,
            "template": {"spec": {"containers": [{"resources": {"limits": limits}}]}},
        },
    }


class FakeApiServer:
    def __init__(self) -> None:
        self.objects: dict[tuple[str, str], dict[str, Any]] = {}
        self.statuses: list[dict[str, Any]] = []
        self.events: list[tuple[str, str, str]] = []  # (kind, reason, message)
        self.requests: list[str] = []
        self.version = 1
        self.refusing = False  # every Deployment write answered 403 (RBAC taken away)

    def add(self, namespace: str, name: str, replicas: int, gpus: int = 0) -> None:
        self.objects[(namespace, name)] = deployment_body(namespace, name, replicas, gpus)

    def snapshots(self) -> list[DeploymentSnapshot]:
        return [snapshot(copy.deepcopy(body)) for body in self.objects.values()]

    def replicas(self, namespace: str, name: str) -> int:
        return int(self.objects[(namespace, name)]["spec"]["replicas"])

    def ledger(self, namespace: str, name: str) -> str | None:
        annotations = self.objects[(namespace, name)]["metadata"]["annotations"]
        value = annotations.get(ANNOTATION)
        return None if value is None else str(value)

    def user_writes(self, namespace: str, name: str, replicas: int) -> None:
        """Someone else changes the Deployment: the cache the cycle read is now stale."""
        body = self.objects[(namespace, name)]
        body["spec"]["replicas"] = replicas
        self._bump(body)

    def _bump(self, body: dict[str, Any]) -> None:
        self.version += 1
        body["metadata"]["resourceVersion"] = str(self.version)

    async def patch_deployment(
        self, namespace: str, name: str, patch: dict[str, Any]
    ) -> dict[str, Any]:
        self.requests.append(f"PATCH {namespace}/{name}")
        if self.refusing:
            raise KubeApiError(f"403: deployments {name} is forbidden")
        body = self.objects.get((namespace, name))
        if body is None:
            raise Gone(name)
        metadata = patch.get("metadata", {})
        if metadata.get("resourceVersion") not in (None, body["metadata"]["resourceVersion"]):
            raise Conflict(f"{name} was modified")
        for key, value in (metadata.get("annotations") or {}).items():
            if value is None:
                body["metadata"]["annotations"].pop(key, None)
            else:
                body["metadata"]["annotations"][key] = value
        if "replicas" in patch.get("spec", {}):
            body["spec"]["replicas"] = patch["spec"]["replicas"]
        self._bump(body)
        return copy.deepcopy(body)

    async def get_deployment(self, namespace: str, name: str) -> dict[str, Any]:
        self.requests.append(f"GET {namespace}/{name}")
        body = self.objects.get((namespace, name))
        if body is None:
            raise Gone(name)
        return copy.deepcopy(body)

    async def patch_status(self, namespace: str, name: str, status: dict[str, Any]) -> None:
        self.requests.append(f"STATUS {namespace}/{name}")
        self.statuses.append(copy.deepcopy(status))

    async def event(
        self,
        involved: ObjectRef,
        reason: str,
        message: str,
        now: datetime,
        *,
        warning: bool = False,
    ) -> None:
        self.requests.append(f"EVENT {involved.kind}/{involved.name}")
        self.events.append((involved.kind, reason, message))


T0 = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
