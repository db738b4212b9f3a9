"""Whether each backend has ready endpoints, from its Service's EndpointSlices: one LIST
and then a WATCH per backend (never a request per proxied request; ``listwatch``).

An endpoint counts as ready unless its ``ready`` condition is false (the API documents a
missing condition as ready). An endpoint listed as not ready and not terminating is
*pending*: a pod starting. The proxy may find a pending endpoint ready by probing it itself
(``early_ready``); it then counts as ready until Kubernetes lists it as ready, terminating
or not at all, whichever comes first."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from gpuplane.activator.config import Backend
from gpuplane.shared.kube_session import KubeSession
from gpuplane.shared.listwatch import ListWatch


def ready_addresses(slice_body: dict[str, Any]) -> list[str]:
    """The first address of each ready endpoint (one pod, one address)."""
    return [
        str(endpoint["addresses"][0])
        for endpoint in slice_body.get("endpoints") or []
        if (endpoint.get("conditions") or {}).get("ready") is not False
        and endpoint.get("addresses")
    ]


def pending_addresses(slice_body: dict[str, Any]) -> list[str]:
    """The first address of each endpoint listed as not ready that is not terminating: a
    pod that is starting (a terminating one is leaving and must never be chosen)."""
    found = []
    for endpoint in slice_body.get("endpoints") or []:
        conditions = endpoint.get("conditions") or {}
        starting = conditions.get("ready") is False and conditions.get("terminating") is not True
        if starting and endpoint.get("addresses"):
            found.append(str(endpoint["addresses"][0]))
    return found


def ready_endpoints(slice_body: dict[str, Any]) -> int:
    return len(ready_addresses(slice_body))


class Readiness:
    """Ready endpoints of one backend, and an event set while there are any."""

    def __init__(self, on_change: Callable[[int], None] = lambda count: None) -> None:
        self._slices: dict[str, list[str]] = {}
        self._pending_by_slice: dict[str, list[str]] = {}
        # Pending endpoints that answered the proxy's own readiness probe.
        self._probed: set[str] = set()
        # Flattened when a slice changes, not on every proxied request.
        self._addresses: list[str] = []
        self._pending: list[str] = []
        self.ready = asyncio.Event()
        self._on_change = on_change
        self._turn = 0

    @property
    def count(self) -> int:
        return len(self._addresses)

    def next_address(self) -> str | None:
        """Ready endpoints' addresses in turn (None while there is none)."""
        if not self._addresses:
            return None
        self._turn = (self._turn + 1) % len(self._addresses)
        return self._addresses[self._turn]

    def pending(self) -> list[str]:
        """Addresses of starting endpoints not yet found ready by a probe."""
        return [address for address in self._pending if address not in self._probed]

    def mark_probed(self, address: str) -> None:
        """``address`` answered the proxy's readiness probe: ready, if still pending."""
        if address in self._pending and address not in self._probed:
            self._probed.add(address)
            self._changed()

    def apply(self, kind: str, body: dict[str, Any]) -> None:
        name = str((body.get("metadata") or {}).get("name", ""))
        if kind == "DELETED":
            self._slices.pop(name, None)
            self._pending_by_slice.pop(name, None)
        else:
            self._slices[name] = ready_addresses(body)
            self._pending_by_slice[name] = pending_addresses(body)
        self._changed()

    def replace(self, bodies: list[dict[str, Any]]) -> None:
        named = {str((b.get("metadata") or {}).get("name", "")): b for b in bodies}
        self._slices = {name: ready_addresses(body) for name, body in named.items()}
        self._pending_by_slice = {name: pending_addresses(body) for name, body in named.items()}
        self._changed()

    def _changed(self) -> None:
        self._pending = [a for _, found in sorted(self._pending_by_slice.items()) for a in found]
        # A probed endpoint that Kubernetes now lists as ready, terminating or not at all is
        # Kubernetes' again.
        self._probed &= set(self._pending)
        listed = [a for _, found in sorted(self._slices.items()) for a in found]
        self._addresses = listed + [a for a in self._pending if a in self._probed]
        if self.count > 0:
            self.ready.set()
        else:
            self.ready.clear()
        self._on_change(self.count)


class EndpointWatch:
    """The EndpointSlices of one backend's Service, followed into its Readiness."""

    def __init__(self, kube: KubeSession, backend: Backend, readiness: Readiness) -> None:
        self.synced = asyncio.Event()

        def listed(items: list[dict[str, Any]]) -> None:
            readiness.replace(items)
            self.synced.set()

        self._watch = ListWatch(
            kube,
            f"/apis/discovery.k8s.io/v1/namespaces/{backend.namespace}/endpointslices",
            on_list=listed,
            on_event=readiness.apply,
            params={"labelSelector": f"kubernetes.io/service-name={backend.service}"},
        )

    async def run(self) -> None:
        await self._watch.run()
