"""Prometheus instant queries: one HTTP request per distinct query, answers as
QueryResult.

On aiohttp (kopf's own HTTP client, so no extra dependency): a query costs a quarter of
the CPU it did on httpx, and a steady cycle is mostly queries.
"""

from __future__ import annotations

import json
from typing import Any, Protocol

import aiohttp

from gpuplane.downscaler.readings import QueryResult, vector_values
from gpuplane.shared.quoting import quoted

QUERY_TIMEOUT_SECONDS = 10.0


class InstantQueries(Protocol):
    """What a cycle needs of Prometheus (PrometheusClient; a fake in tests)."""

    async def query(self, promql: str, target_label: str) -> QueryResult: ...


def answer_of(status: int, text: str, target_label: str) -> QueryResult:
    """An /api/v1/query answer as values per target, or the error it carries."""
    try:
        payload: Any = json.loads(text)
    except ValueError:
        return QueryResult(error=f"HTTP {status}: not a Prometheus answer")
    if not isinstance(payload, dict):
        return QueryResult(error=f"HTTP {status}: not a Prometheus answer")
    if status != 200 or payload.get("status") != "success":
        message = payload.get("error") or f"HTTP {status}"
        # What a server answered goes into the policy's status and Events: bounded and
        # quoted, never taken as the operator's own words.
        return QueryResult(error=f"Prometheus answered {status}: {quoted(str(message))}")
    kind = (payload.get("data") or {}).get("resultType")
    if kind != "vector":
        return QueryResult(error=f"query must return an instant vector, got {kind}")
    try:
        return QueryResult(values=vector_values(payload, target_label))
    except (TypeError, ValueError, AttributeError) as error:
        return QueryResult(error=f"malformed vector: {error}")


class PrometheusClient:
    """Instant queries against one Prometheus (the operator's metrics count them)."""

    def __init__(self, base_url: str, *, timeout: float = QUERY_TIMEOUT_SECONDS) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self._session: aiohttp.ClientSession | None = None

    def _http(self) -> aiohttp.ClientSession:
        # Made inside the running loop; trust_env stays off: a proxy from the environment
        # must not carry loopback queries.
        if self._session is None:
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=self.timeout), trust_env=False
            )
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()

    async def query(self, promql: str, target_label: str) -> QueryResult:
        url = f"{self.base_url}/api/v1/query"
        try:
            async with self._http().get(url, params={"query": promql}) as response:
                text = await response.text()
                status = response.status
        except (TimeoutError, aiohttp.ClientError, ValueError) as error:
            return QueryResult(unreachable=True, error=f"{type(error).__name__}: {error}")
        return answer_of(status, text, target_label)
