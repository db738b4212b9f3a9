"""The wake request: one merge patch of the Deployment's ``gpuplane.io/wake-requested``
annotation (the activator's only write; a ValidatingAdmissionPolicy refuses it anything
else). The downscaler's watch sees it at once and restores the ledger's count."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime

import aiohttp

from gpuplane.activator.config import Backend
from gpuplane.activator.metrics import ActivatorMetrics
from gpuplane.shared.kube_session import MERGE_PATCH, KubeSession
from gpuplane.shared.wake_annotation import wake_patch

log = logging.getLogger(__name__)


class Waker:
    def __init__(self, kube: KubeSession, metrics: ActivatorMetrics) -> None:
        self._kube, self._metrics = kube, metrics

    async def __call__(self, backend: Backend) -> bool:
        path = f"/apis/apps/v1/namespaces/{backend.namespace}/deployments/{backend.deployment}"
        owner = (backend.namespace, backend.deployment)
        try:
            async with self._kube.session().patch(
                self._kube.url(path),
                data=json.dumps(wake_patch(datetime.now(UTC))),
                headers=self._kube.headers(MERGE_PATCH),
            ) as answer:
                status, text = answer.status, await answer.text()
        except (aiohttp.ClientError, TimeoutError, OSError) as error:
            log.warning("wake request for %s/%s failed: %s", *owner, error)
            self._metrics.wake_requests.labels(*owner, "error").inc()
            return False
        if status >= 300:
            log.warning("wake request for %s/%s: %d %s", *owner, status, text[:200])
            self._metrics.wake_requests.labels(*owner, "error").inc()
            return False
        log.info("wake requested for %s/%s", *owner)
        self._metrics.wake_requests.labels(*owner, "ok").inc()
        return True
