"""Leader election against an in-memory Lease store with resourceVersions: a renewal is
one request, a conflict falls back to a read, a live holder is respected and an expired
one is taken over."""

from __future__ import annotations

import asyncio
import copy
from datetime import UTC, datetime, timedelta

import httpx2
from lightkube.core.exceptions import ApiError
from lightkube.models.coordination_v1 import LeaseSpec
from lightkube.models.meta_v1 import ObjectMeta
from lightkube.resources.coordination_v1 import Lease

from gpuplane.downscaler.leader import LeaderElector


def api_error(code: int) -> ApiError:
    request = httpx2.Request("PUT", "https://127.0.0.1/lease")
    body = {"kind": "Status", "code": code, "message": f"HTTP {code}"}
    return ApiError(request=request, response=httpx2.Response(code, json=body, request=request))


class LeaseStore:
    def __init__(self) -> None:
        self.lease: Lease | None = None
        self.version = 0
        self.calls: list[str] = []

    def _stored(self, lease: Lease) -> Lease:
        self.version += 1
        stored = copy.deepcopy(lease)
        assert stored.metadata is not None
        stored.metadata.resourceVersion = str(self.version)
        self.lease = stored
        return copy.deepcopy(stored)

    async def get(self, _kind: object, name: str, *, namespace: str) -> Lease:
        self.calls.append("get")
        if self.lease is None:
            raise api_error(404)
        return copy.deepcopy(self.lease)

    async def create(self, lease: Lease) -> Lease:
        self.calls.append("create")
        if self.lease is not None:
            raise api_error(409)
        return self._stored(lease)

    async def replace(self, lease: Lease) -> Lease:
        self.calls.append("replace")
        assert self.lease is not None and self.lease.metadata is not None
        assert lease.metadata is not None
        if lease.metadata.resourceVersion != self.lease.metadata.resourceVersion:
            raise api_error(409)
        return self._stored(lease)

    def someone_else(self, holder: str, renewed: datetime) -> None:
        self._stored(
            Lease(
                metadata=ObjectMeta(name="lease", namespace="ns"),
                spec=LeaseSpec(holderIdentity=holder, leaseDurationSeconds=15, renewTime=renewed),
            )
        )


def elector(store: LeaseStore, identity: str = "me") -> LeaderElector:
    return LeaderElector(store, "ns", "lease", identity)  # type: ignore[arg-type]


def test_a_renewal_is_one_request() -> None:
    store = LeaseStore()
    me = elector(store)
    assert asyncio.run(me.try_acquire())
    assert store.calls == ["get", "create"]
    store.calls.clear()
    for _ in range(3):
        assert asyncio.run(me.renew())
    assert store.calls == ["replace", "replace", "replace"]


def test_a_conflicting_renewal_reads_again_and_respects_a_live_holder() -> None:
    store = LeaseStore()
    me = elector(store)
    assert asyncio.run(me.try_acquire())
    store.someone_else("other", datetime.now(UTC))  # wrote the Lease behind our back
    store.calls.clear()
    assert not asyncio.run(me.renew())
    assert store.calls == ["replace", "get"]


def test_an_expired_holder_is_taken_over() -> None:
    store = LeaseStore()
    store.someone_else("gone", datetime.now(UTC) - timedelta(seconds=60))
    me = elector(store)
    assert asyncio.run(me.try_acquire())
    assert store.lease is not None and store.lease.spec is not None
    assert store.lease.spec.holderIdentity == "me"
    assert store.lease.spec.leaseTransitions == 1
