"""LIST then WATCH of one Kubernetes collection over an httpx client: the loop that keeps a
local copy current without listing per use. A watch that ends is resumed from the last
resourceVersion (bookmarks keep it fresh); one that is too old (410) lists again; any
other failure is logged and retried after a pause.

Shared by the downscaler's Deployment cache and the activator's EndpointSlice watch:
a leaf module with no gpuplane import, so both stay separate processes and images."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from typing import Any

import httpx2

log = logging.getLogger(__name__)
GONE = 410
WATCH_SECONDS = 300
RETRY_SECONDS = 1.0


class WatchExpired(Exception):
    """The resourceVersion is too old (410): list again."""


class ListWatch:
    """``on_list(items)`` replaces the copy; ``on_event(type, object)`` applies one change."""

    def __init__(
        self,
        http: httpx2.AsyncClient,
        path: str,
        *,
        on_list: Callable[[list[dict[str, Any]]], None],
        on_event: Callable[[str, dict[str, Any]], None],
        params: dict[str, str] | None = None,
        retry_seconds: float = RETRY_SECONDS,
    ) -> None:
        self._http, self._path, self._params = http, path, dict(params or {})
        self._on_list, self._on_event = on_list, on_event
        self._retry = retry_seconds

    async def run(self) -> None:
        while True:
            try:
                version = await self.list()
                while True:
                    version = await self.watch(version)
            except WatchExpired:
                log.debug("watch of %s expired; listing again", self._path)
            except (httpx2.HTTPError, OSError, ValueError) as error:
                log.warning("watch of %s failed: %s", self._path, error)
                await asyncio.sleep(self._retry)

    async def list(self) -> str:
        response = await self._http.get(self._path, params=self._params)
        response.raise_for_status()
        answer = response.json()
        self._on_list(list(answer.get("items") or []))
        return str((answer.get("metadata") or {}).get("resourceVersion", ""))

    async def watch(self, version: str) -> str:
        """Follow one watch request; the resourceVersion to resume from when it ends."""
        params = {
            **self._params,
            "watch": "1",
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
                    self._on_event(kind, body)
        return version
