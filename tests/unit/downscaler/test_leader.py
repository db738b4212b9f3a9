"""Leader election against an in-memory Lease endpoint with resourceVersions: a renewal
is one request, a conflict falls back to a read, a live holder is respected and an
expired one is taken over."""

from __future__ import annotations

import asyncio
import copy
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx2

from gpuplane.downscaler.leader import LeaderElector, micro_time

PATH = "/apis/coordination.k8s.io/v1/namespaces/ns/leases/lease"


class LeaseEndpoint:
    """GET/PUT on the Lease, POST on its collection; PUT needs the current version."""

    def __init__(self) -> None:
        self.lease: dict[str, Any] | None = None
        self.version = 0
        self.calls: list[str] = []

    def _store(self, lease: dict[str, Any]) -> httpx2.Response:
        self.version += 1
        self.lease = copy.deepcopy(lease)
        self.lease["metadata"]["resourceVersion"] = str(self.version)
        return httpx2.Response(200, json=self.lease)

    def handle(self, request: httpx2.Request) -> httpx2.Response:
        self.calls.append(request.method)
        body = json.loads(request.content) if request.content else None
        if request.method == "GET":
            return httpx2.Response(200, json=self.lease) if self.lease else httpx2.Response(404)
        if request.method == "POST":
            return httpx2.Response(409) if self.lease else self._store(body)
        assert self.lease is not None and body is not None
        if body["metadata"].get("resourceVersion") != self.lease["metadata"]["resourceVersion"]:
            return httpx2.Response(409)
        return self._store(body)

    def someone_else(self, holder: str, renewed: datetime) -> None:
        self._store(
            {
                "metadata": {"name": "lease", "namespace": "ns"},
                "spec": {
                    "holderIdentity": holder,
                    "leaseDurationSeconds": 15,
                    "renewTime": micro_time(renewed),
                },
            }
        )


def run_with(endpoint: LeaseEndpoint, action: Any) -> Any:
    async def go() -> Any:
        transport = httpx2.MockTransport(endpoint.handle)
        async with httpx2.AsyncClient(transport=transport, base_url="https://api") as http:
            return await action(LeaderElector(http, "ns", "lease", "me"))

    return asyncio.run(go())


def test_a_renewal_is_one_request() -> None:
    endpoint = LeaseEndpoint()

    async def acquire_then_renew(me: LeaderElector) -> list[bool]:
        results = [await me.try_acquire()]
        endpoint.calls.clear()
        return results + [await me.renew() for _ in range(3)]

    assert run_with(endpoint, acquire_then_renew) == [True, True, True, True]
    assert endpoint.calls == ["PUT", "PUT", "PUT"]
    assert endpoint.lease is not None and endpoint.lease["spec"]["holderIdentity"] == "me"


def test_a_conflicting_renewal_reads_again_and_respects_a_live_holder() -> None:
    endpoint = LeaseEndpoint()

    async def lose(me: LeaderElector) -> bool:
        assert await me.try_acquire()
        endpoint.someone_else("other", datetime.now(UTC))  # wrote the Lease behind our back
        endpoint.calls.clear()
        return await me.renew()

    assert run_with(endpoint, lose) is False
    assert endpoint.calls == ["PUT", "GET"]


def test_an_expired_holder_is_taken_over() -> None:
    endpoint = LeaseEndpoint()
    endpoint.someone_else("gone", datetime.now(UTC) - timedelta(seconds=60))

    async def take(me: LeaderElector) -> bool:
        return await me.try_acquire()

    assert run_with(endpoint, take) is True
    assert endpoint.lease is not None
    assert endpoint.lease["spec"]["holderIdentity"] == "me"
    assert endpoint.lease["spec"]["leaseTransitions"] == 1
