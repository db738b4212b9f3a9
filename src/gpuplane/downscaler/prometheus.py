"""Prometheus instant queries: one HTTP request per query, answers as QueryResult."""

from __future__ import annotations

from typing import Protocol

import httpx2

from gpuplane.downscaler.readings import QueryResult, vector_values

QUERY_TIMEOUT_SECONDS = 10.0


class InstantQueries(Protocol):
    """What a cycle needs of Prometheus (PrometheusClient; a fake in tests)."""

    async def query(self, promql: str, target_label: str) -> QueryResult: ...


class PrometheusClient:
    """Instant queries against one Prometheus (the operator's metrics count them)."""

    def __init__(self, base_url: str, *, timeout: float = QUERY_TIMEOUT_SECONDS) -> None:
        self.base_url = base_url.rstrip("/")
        # trust_env off: a proxy from the environment must not carry loopback queries.
        self._http = httpx2.AsyncClient(timeout=timeout, trust_env=False)

    async def close(self) -> None:
        await self._http.aclose()

    async def query(self, promql: str, target_label: str) -> QueryResult:
        try:
            response = await self._http.get(
                f"{self.base_url}/api/v1/query", params={"query": promql}
            )
        except httpx2.HTTPError as error:
            return QueryResult(unreachable=True, error=f"{type(error).__name__}: {error}")
        try:
            payload = response.json()
        except ValueError:
            return QueryResult(error=f"HTTP {response.status_code}: not a Prometheus answer")
        if response.status_code != 200 or payload.get("status") != "success":
            message = payload.get("error") or f"HTTP {response.status_code}"
            return QueryResult(error=str(message))
        if payload.get("data", {}).get("resultType") != "vector":
            kind = payload.get("data", {}).get("resultType")
            return QueryResult(error=f"query must return an instant vector, got {kind}")
        return QueryResult(values=vector_values(payload, target_label))
