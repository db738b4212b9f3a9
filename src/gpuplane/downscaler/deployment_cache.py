"""A watch-backed cache of Deployments, as snapshots: one LIST, then a WATCH from its
resourceVersion (with bookmarks); a watch that ends is resumed, one that is too old (410)
starts again from a LIST. Cycles read it and never list.

Our own rather than a kopf index: kopf gives every event of every Deployment its full
handler machinery (a worker, a diff base deep copy, progress bookkeeping), which at
1,000 Deployments was the operator's largest CPU cost; here an event is one json.loads
and one snapshot.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from gpuplane.downscaler.snapshot import DeploymentSnapshot, snapshot
from gpuplane.shared.kube_session import KubeSession
from gpuplane.shared.listwatch import ListWatch

RETRY_SECONDS = 2.0

OnChange = Callable[[DeploymentSnapshot | None, str, str], None]


def collection_path(namespace: str | None) -> str:
    if namespace is None:
        return "/apis/apps/v1/deployments"
    return f"/apis/apps/v1/namespaces/{namespace}/deployments"


class DeploymentCache:
    def __init__(
        self, kube: KubeSession, namespaces: list[str], on_change: OnChange | None = None
    ) -> None:
        self._kube = kube
        # None: the whole cluster (one watch); else one watch per namespace.
        self._scopes: list[str | None] = list(namespaces) or [None]
        self._on_change = on_change
        self._items: dict[str, dict[str, DeploymentSnapshot]] = {}
        self._listed: set[str | None] = set()
        self.synced = asyncio.Event()  # every scope listed once

    def in_namespace(self, namespace: str) -> list[DeploymentSnapshot]:
        return list(self._items.get(namespace, {}).values())

    def apply(self, kind: str, body: dict[str, Any]) -> None:
        """One watch event (ADDED, MODIFIED, DELETED) applied to the cache."""
        metadata = body.get("metadata") or {}
        namespace, name = str(metadata.get("namespace", "")), str(metadata.get("name", ""))
        if kind == "DELETED":
            self._items.get(namespace, {}).pop(name, None)
            if self._on_change is not None:
                self._on_change(None, namespace, name)
            return
        item = snapshot(body)
        self._items.setdefault(namespace, {})[name] = item
        if self._on_change is not None:
            self._on_change(item, namespace, name)

    def replace(self, scope: str | None, bodies: list[dict[str, Any]]) -> None:
        """A LIST's answer replaces what the cache held for its scope."""
        if scope is None:
            self._items = {}
        else:
            self._items[scope] = {}
        for body in bodies:
            self.apply("ADDED", body)
        self._listed.add(scope)
        if all(scope in self._listed for scope in self._scopes):
            self.synced.set()

    async def run(self) -> None:
        await asyncio.gather(*(self._watcher(scope).run() for scope in self._scopes))

    def _watcher(self, scope: str | None) -> ListWatch:
        return ListWatch(
            self._kube,
            collection_path(scope),
            on_list=lambda items: self.replace(scope, items),
            on_event=self.apply,
            retry_seconds=RETRY_SECONDS,
        )
