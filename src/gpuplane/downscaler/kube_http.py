"""The operator's HTTP client for the API server: JSON in and out over the shared
aiohttp session (``gpuplane.shared.kube_session``), every request counted in the
operator's metrics."""

from __future__ import annotations

import json
from typing import Any

from gpuplane.downscaler.metrics import OperatorMetrics
from gpuplane.shared.kube_session import JSON, MERGE_PATCH, KubeSession


class KubeHttp:
    def __init__(self, kube: KubeSession, metrics: OperatorMetrics) -> None:
        self.kube = kube
        self._metrics = metrics

    async def call(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        merge: bool = False,
        params: dict[str, str] | None = None,
    ) -> tuple[int, Any]:
        """(status, the answer's JSON or None). Connection errors raise aiohttp's errors."""
        content = None if body is None else json.dumps(body, separators=(",", ":")).encode()
        headers = self.kube.headers(MERGE_PATCH if merge else JSON)
        async with self.kube.session().request(
            method, self.kube.url(path), data=content, headers=headers, params=params
        ) as response:
            raw = await response.read()
            status = response.status
        self._metrics.kube_requests.labels(method).inc()
        self._metrics.kube_bytes.labels("sent").inc(len(content or b""))
        self._metrics.kube_bytes.labels("received").inc(len(raw))
        try:
            return status, json.loads(raw) if raw else None
        except ValueError:
            return status, None

    async def close(self) -> None:
        await self.kube.close()
