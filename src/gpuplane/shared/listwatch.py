"""LIST then WATCH of one Kubernetes collection over the shared aiohttp session: the loop
that keeps a local copy current without listing per use. A watch that ends is resumed from
the last resourceVersion (bookmarks keep it fresh); one that is too old (410) lists again;
any other failure is logged and retried after a pause.

Shared by the downscaler's Deployment cache and the activator's EndpointSlice watch."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp

from gpuplane.shared.kube_session import KubeSession

log = logging.getLogger(__name__)
GONE = 410
WATCH_SECONDS = 300
RETRY_SECONDS = 1.0


class WatchFailed(Exception):
    """The API server answered a LIST or WATCH with an error status."""


class WatchExpired(Exception):
    """The resourceVersion is too old (410): list again."""


class ListWatch:
    """``on_list(items)`` replaces the copy; ``on_event(type, object)`` applies one change."""

    def __init__(
        self,
        kube: KubeSession,
        path: str,
        *,
        on_list: Callable[[list[dict[str, Any]]], None],
        on_event: Callable[[str, dict[str, Any]], None],
        params: dict[str, str] | None = None,
        retry_seconds: float = RETRY_SECONDS,
    ) -> None:
        self._kube, self._path, self._params = kube, path, dict(params or {})
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
            except (aiohttp.ClientError, TimeoutError, OSError, ValueError, WatchFailed) as error:
                log.warning("watch of %s failed: %s", self._path, error)
                await asyncio.sleep(self._retry)

    async def list(self) -> str:
        async with self._kube.session().get(
            self._kube.url(self._path), params=self._params, headers=self._kube.headers()
        ) as response:
            if response.status >= 300:
                raise WatchFailed(f"LIST {self._path}: {response.status}")
            answer = json.loads(await response.read())
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
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=10.0, sock_read=WATCH_SECONDS + 30)
        async with self._kube.session().get(
            self._kube.url(self._path),
            params=params,
            headers=self._kube.headers(),
            timeout=timeout,
        ) as response:
            if response.status == GONE:
                raise WatchExpired
            if response.status >= 300:
                raise WatchFailed(f"WATCH {self._path}: {response.status}")
            async for line in lines_of(response.content):
                event = json.loads(line)
                kind, body = str(event.get("type")), event.get("object") or {}
                if kind == "ERROR":
                    if body.get("code") == GONE:
                        raise WatchExpired
                    raise WatchFailed(f"watch error: {body.get('message')}")
                version = str((body.get("metadata") or {}).get("resourceVersion") or version)
                if kind != "BOOKMARK":
                    self._on_event(kind, body)
        return version


async def lines_of(stream: aiohttp.StreamReader) -> AsyncIterator[bytes]:
    """The stream's non-empty lines, however long: aiohttp's own line reader refuses a
    line over 64 KiB, and one watch event (a Deployment with a large annotation) can be."""
    pending = bytearray()
    async for chunk in stream.iter_any():
        pending += chunk
        start = 0
        while (end := pending.find(b"\n", start)) >= 0:
            if end > start:
                yield bytes(pending[start:end])
            start = end + 1
        del pending[:start]
    if pending.strip():
        yield bytes(pending)
