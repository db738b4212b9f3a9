"""Lease-based leader election: only the holder of the Lease acts.

The standard coordination.k8s.io Lease protocol: take the Lease when it is free or
expired, renew it every ``renew_seconds``; a leader that cannot renew before its lease
runs out steps down (the process exits and is restarted by its Deployment).

A renewal is one request: the holder keeps the Lease it last wrote and replaces it with a
new renewTime; its resourceVersion makes the replace fail if anyone else wrote the Lease
since, and only then is it read again.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime, timedelta

from lightkube import AsyncClient
from lightkube.core.exceptions import ApiError
from lightkube.models.coordination_v1 import LeaseSpec
from lightkube.models.meta_v1 import ObjectMeta
from lightkube.resources.coordination_v1 import Lease

log = logging.getLogger(__name__)
NOT_FOUND, CONFLICT = 404, 409


def now_utc() -> datetime:
    return datetime.now(UTC)


def lease_expired(lease: Lease, now: datetime) -> bool:
    spec = lease.spec
    if spec is None or spec.holderIdentity is None or spec.renewTime is None:
        return True
    duration = timedelta(seconds=spec.leaseDurationSeconds or 15)
    renewed = spec.renewTime if spec.renewTime.tzinfo else spec.renewTime.replace(tzinfo=UTC)
    return renewed + duration < now


class LeaderElector:
    def __init__(
        self,
        client: AsyncClient,
        namespace: str,
        name: str,
        identity: str,
        *,
        lease_seconds: int = 15,
        renew_seconds: float = 5.0,
    ) -> None:
        self.client, self.namespace, self.name, self.identity = client, namespace, name, identity
        self.lease_seconds, self.renew_seconds = lease_seconds, renew_seconds
        self._held: Lease | None = None  # the Lease as we last wrote it

    async def renew(self) -> bool:
        """One replace of the Lease we hold; a conflict falls back to a full attempt."""
        held = self._held
        if held is None or held.spec is None:
            return await self.try_acquire()
        held.spec.renewTime = now_utc()
        try:
            self._held = await self.client.replace(held)
        except ApiError as error:
            self._held = None
            if error.status.code != CONFLICT:
                raise
            return await self.try_acquire()
        return True

    async def try_acquire(self) -> bool:
        now = now_utc()
        try:
            lease = await self.client.get(Lease, self.name, namespace=self.namespace)
        except ApiError as error:
            if error.status.code != NOT_FOUND:
                raise
            lease = Lease(
                metadata=ObjectMeta(name=self.name, namespace=self.namespace),
                spec=LeaseSpec(
                    holderIdentity=self.identity,
                    leaseDurationSeconds=self.lease_seconds,
                    acquireTime=now,
                    renewTime=now,
                    leaseTransitions=0,
                ),
            )
            try:
                self._held = await self.client.create(lease)
            except ApiError as create_error:
                if create_error.status.code == CONFLICT:
                    return False
                raise
            return True
        spec = lease.spec or LeaseSpec()
        if spec.holderIdentity != self.identity and not lease_expired(lease, now):
            return False
        taking_over = spec.holderIdentity != self.identity
        spec.holderIdentity = self.identity
        spec.leaseDurationSeconds = self.lease_seconds
        spec.renewTime = now
        if taking_over:
            spec.acquireTime = now
            spec.leaseTransitions = (spec.leaseTransitions or 0) + 1
        lease.spec = spec
        try:
            # replace carries the resourceVersion: two candidates cannot both win.
            self._held = await self.client.replace(lease)
        except ApiError as error:
            if error.status.code == CONFLICT:
                return False
            raise
        return True

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
            except (ApiError, OSError) as error:
                log.warning("lease renewal failed: %s", error)
                renewed = False
            if renewed:
                last_renewed = now_utc()
            elif now_utc() - last_renewed > timedelta(seconds=self.lease_seconds):
                log.error("leader election: lost %s/%s", self.namespace, self.name)
                lost.set()
