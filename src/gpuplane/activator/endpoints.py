"""Whether each backend has ready endpoints, from its Service's EndpointSlices: one LIST
and then a WATCH per backend (never a request per proxied request). A watch that ends is
resumed; one that is too old (410) lists again.

An endpoint counts as ready unless its ``ready`` condition is false (the API documents a
missing condition as ready)."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from typing import Any

import httpx2

from gpuplane.activator.config import Backend

log = logging.getLogger(__name__)
GONE = 410
WATCH_SECONDS = 300
RETRY_SECONDS = 1.0


def ready_endpoints(slice_body: dict[str, Any]) -> int:
    return sum(
        1
        for endpoint in slice_body.get("endpoints") or []
        if (endpoint.get("conditions") or {}).get("ready") is not False
    )


class Readiness:
    """Ready endpoints of one backend, and an event set while there are any."""

    def __init__(self, on_change: Callable[[int], None] = lambda count: None) -> None:
        self._slices: dict[str, int] = {}
        self.ready = asyncio.Event()
        self._on_change = on_change

    @property
    def count(self) -> int:
        return sum(self._slices.values())

    def apply(self, kind: str, body: dict[str, Any]) -> None:
        name = str((body.get("metadata") or {}).get("name", ""))
        if kind == "DELETED":
            self._slices.pop(name, None)
        else:
            self._slices[name] = ready_endpoints(body)
        self._changed()

    def replace(self, bodies: list[dict[str, Any]]) -> None:
        self._slices = {
            str((b.get("metadata") or {}).get("name", "")): ready_endpoints(b) for b in bodies
        }
        self._changed()

    def _changed(self) -> None:
        if self.count > 0:
            self.ready.set()
        else:
            self.ready.clear()
        self._on_change(self.count)


class WatchExpired(Exception):
    pass


class EndpointWatch:
    def __init__(self, http: httpx2.AsyncClient, backend: Backend, readiness: Readiness) -> None:
        self._http = http
        self._path = f"/apis/discovery.k8s.io/v1/namespaces/{backend.namespace}/endpointslices"
        self._selector = f"kubernetes.io/service-name={backend.service}"
        self._readiness = readiness
        self.synced = asyncio.Event()

    async def run(self) -> None:
        while True:
            try:
                version = await self._list()
                while True:
                    version = await self._watch(version)
            except WatchExpired:
                continue
            except (httpx2.HTTPError, OSError, ValueError) as error:
                log.warning(
                    "endpointslice watch %s (%s) failed: %s", self._path, self._selector, error
                )
                await asyncio.sleep(RETRY_SECONDS)

    async def _list(self) -> str:
        response = await self._http.get(self._path, params={"labelSelector": self._selector})
        response.raise_for_status()
        answer = response.json()
        self._readiness.replace(list(answer.get("items") or []))
        self.synced.set()
        return str((answer.get("metadata") or {}).get("resourceVersion", ""))

    async def _watch(self, version: str) -> str:
        params = {
            "watch": "1",
            "labelSelector": self._selector,
            "resourceVersion": version,
            "allowWatchBookmarks": "true",
            "timeoutSeconds": str(WATCH_SECONDS),
        }
        timeout = httpx2.Timeout(10.0, read=WATCH_SECONDS + 30.0)
        async with self._http.stream("GET", self._path, params=params, timeout=timeout) as response:
            if response.status_code == GONE:
                raise WatchExpired
            response.raise_for_status()
            async for line in response.aiter_lines():
                if not line:
                    continue
                event = json.loads(line)
                kind, body = str(event.get("type")), event.get("object") or {}
                if kind == "ERROR":
                    if body.get("code") == GONE:
                        raise WatchExpired
                    raise ValueError(f"watch error: {body.get('message')}")
                version = str((body.get("metadata") or {}).get("resourceVersion") or version)
                if kind != "BOOKMARK":
                    self._readiness.apply(kind, body)
        return version
