"""Lease-based leader election: only the holder of the Lease acts.

The standard coordination.k8s.io Lease protocol: take the Lease when it is free or
expired, renew it every ``renew_seconds``; a leader that cannot renew before its lease
runs out steps down (the process exits and is restarted by its Deployment).

A renewal is one request: the holder keeps the Lease it last wrote and replaces it with a
new renewTime; its resourceVersion makes the replace fail if anyone else wrote the Lease
since, and only then is it read again. Renewals do not queue behind a cycle's writes
(they bypass the write limits).
"""

from __future__ import annotations

import asyncio
import copy
import logging
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

import aiohttp

from gpuplane.shared.kube_time import format_micro_time, parse_time

log = logging.getLogger(__name__)
NOT_FOUND, CONFLICT = 404, 409


class LeaseRequests(Protocol):
    """The calls the elector makes (KubeHttp; a fake in tests): (status, answer JSON)."""

    async def call(self, method: str, path: str, body: Any = None) -> tuple[int, Any]: ...


class LeaseError(Exception):
    """The API server refused a Lease request for another reason than a lost race."""


def now_utc() -> datetime:
    return datetime.now(UTC)


def lease_expired(spec: dict[str, Any], now: datetime) -> bool:
    renewed = parse_time(spec.get("renewTime"))
    if not spec.get("holderIdentity") or renewed is None:
        return True
    return renewed + timedelta(seconds=int(spec.get("leaseDurationSeconds") or 15)) < now


class LeaderElector:
    def __init__(
        self,
        http: LeaseRequests,
        namespace: str,
        name: str,
        identity: str,
        *,
        lease_seconds: int = 15,
        renew_seconds: float = 5.0,
    ) -> None:
        self.http, self.namespace, self.name, self.identity = http, namespace, name, identity
        self.lease_seconds, self.renew_seconds = lease_seconds, renew_seconds
        self.path = f"/apis/coordination.k8s.io/v1/namespaces/{namespace}/leases/{name}"
        self._held: dict[str, Any] | None = None  # the Lease as we last wrote it

    async def _call(self, method: str, path: str, body: Any = None) -> dict[str, Any] | None:
        """The answer, or None for a lost race (404 on read, 409 on write)."""
        status, answer = await self.http.call(method, path, body)
        if status in (NOT_FOUND, CONFLICT):
            return None
        if status >= 400 or not isinstance(answer, dict):
            raise LeaseError(f"{method} {path}: HTTP {status}: {str(answer)[:300]}")
        return answer

    async def renew(self) -> bool:
        """One replace of the Lease we hold; a conflict falls back to a full attempt."""
        if self._held is None:
            return await self.try_acquire()
        lease = copy.deepcopy(self._held)
        lease["spec"]["renewTime"] = format_micro_time(now_utc())
        self._held = await self._call("PUT", self.path, lease)
        return self._held is not None or await self.try_acquire()

    async def try_acquire(self) -> bool:
        now = now_utc()
        found = await self._call("GET", self.path)
        if found is None:
            lease = {
                "apiVersion": "coordination.k8s.io/v1",
                "kind": "Lease",
                "metadata": {"name": self.name, "namespace": self.namespace},
                "spec": {
                    "holderIdentity": self.identity,
                    "leaseDurationSeconds": self.lease_seconds,
                    "acquireTime": format_micro_time(now),
                    "renewTime": format_micro_time(now),
                    "leaseTransitions": 0,
                },
            }
            collection = self.path.rsplit("/", 1)[0]
            self._held = await self._call("POST", collection, lease)
            return self._held is not None
        spec = found.setdefault("spec", {})
        if spec.get("holderIdentity") != self.identity and not lease_expired(spec, now):
            return False
        if spec.get("holderIdentity") != self.identity:
            spec["acquireTime"] = format_micro_time(now)
            spec["leaseTransitions"] = int(spec.get("leaseTransitions") or 0) + 1
        spec.update(
            holderIdentity=self.identity,
            leaseDurationSeconds=self.lease_seconds,
            renewTime=format_micro_time(now),
        )
        # The replace carries the resourceVersion: two candidates cannot both win.
        self._held = await self._call("PUT", self.path, found)
        return self._held is not None

    async def acquire(self) -> None:
        while not await self.try_acquire():
            await asyncio.sleep(self.renew_seconds)
        log.info("leader election: %s holds %s/%s", self.identity, self.namespace, self.name)

    async def hold(self, lost: asyncio.Event) -> None:
        """Renew until renewal fails for a whole lease duration; then set ``lost``."""
        last_renewed = now_utc()
        while not lost.is_set():
            await asyncio.sleep(self.renew_seconds)
            try:
                renewed = await self.renew()
            except (LeaseError, aiohttp.ClientError, TimeoutError, OSError, ValueError) as error:
                log.warning("lease renewal failed: %s", error)
                self._held = None
                renewed = False
            if renewed:
                last_renewed = now_utc()
            elif now_utc() - last_renewed > timedelta(seconds=self.lease_seconds):
                log.error("leader election: lost %s/%s", self.namespace, self.name)
                lost.set()
