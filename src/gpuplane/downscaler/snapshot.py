"""Deployments as the watch-backed cache holds them (what a cycle reads, never lists)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from gpuplane.downscaler.ledger import parse_annotation
from gpuplane.shared.kube_time import parse_time
from gpuplane.shared.resources import GPU_RESOURCE
from gpuplane.shared.wake_annotation import parse_wake_request


@dataclass(frozen=True)
class DeploymentSnapshot:
    namespace: str
    name: str
    uid: str
    labels: dict[str, str]
    replicas: int
    created: datetime
    recorded: int | None  # the ledger annotation
    gpus_per_replica: int
    ready_replicas: int = 0
    resource_version: str = ""  # what a conditional write is guarded by
    wake_requested: datetime | None = None  # the activator's annotation (wake_request)


def snapshot(body: dict[str, Any]) -> DeploymentSnapshot:
    metadata = body.get("metadata", {})
    spec = body.get("spec", {})
    containers = spec.get("template", {}).get("spec", {}).get("containers", [])
    gpus = 0
    for container in containers:
        limits = (container.get("resources") or {}).get("limits") or {}
        try:
            gpus += int(str(limits.get(GPU_RESOURCE, 0)))
        except ValueError:
            continue
    replicas = spec.get("replicas")
    return DeploymentSnapshot(
        namespace=metadata.get("namespace", ""),
        name=metadata.get("name", ""),
        uid=metadata.get("uid", ""),
        labels=dict(metadata.get("labels") or {}),
        replicas=1 if replicas is None else int(replicas),
        created=parse_time(metadata.get("creationTimestamp")) or datetime.now(UTC),
        recorded=parse_annotation(metadata.get("annotations")),
        gpus_per_replica=gpus,
        ready_replicas=int((body.get("status") or {}).get("readyReplicas") or 0),
        resource_version=str(metadata.get("resourceVersion") or ""),
        wake_requested=parse_wake_request(metadata.get("annotations")),
    )
