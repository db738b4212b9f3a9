"""The wake request: one merge patch of the Deployment's ``gpuplane.io/wake-requested``
annotation (the activator's only write; a ValidatingAdmissionPolicy refuses it anything
else). The downscaler's watch sees it at once and restores the ledger's count."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime

import httpx2

from gpuplane.activator.config import Backend
from gpuplane.activator.metrics import ActivatorMetrics

log = logging.getLogger(__name__)
WAKE_REQUEST_ANNOTATION = "gpuplane.io/wake-requested"


def wake_patch(now: datetime) -> dict[str, object]:
    return {
        "metadata": {"annotations": {WAKE_REQUEST_ANNOTATION: now.strftime("%Y-%m-%dT%H:%M:%SZ")}}
    }


class Waker:
    def __init__(self, http: httpx2.AsyncClient, metrics: ActivatorMetrics) -> None:
        self._http, self._metrics = http, metrics

    async def __call__(self, backend: Backend) -> bool:
        path = f"/apis/apps/v1/namespaces/{backend.namespace}/deployments/{backend.deployment}"
        owner = (backend.namespace, backend.deployment)
        try:
            answer = await self._http.patch(
                path,
                content=json.dumps(wake_patch(datetime.now(UTC))),
                headers={"Content-Type": "application/merge-patch+json"},
            )
        except (httpx2.HTTPError, OSError) as error:
            log.warning("wake request for %s/%s failed: %s", *owner, error)
            self._metrics.wake_requests.labels(*owner, "error").inc()
            return False
        if answer.status_code >= 300:
            log.warning(
                "wake request for %s/%s: %d %s", *owner, answer.status_code, answer.text[:200]
            )
            self._metrics.wake_requests.labels(*owner, "error").inc()
            return False
        log.info("wake requested for %s/%s", *owner)
        self._metrics.wake_requests.labels(*owner, "ok").inc()
        return True
