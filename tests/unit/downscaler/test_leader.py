"""Leader election against an in-memory Lease endpoint with resourceVersions: a renewal
is one request, a conflict falls back to a read, a live holder is respected and an
expired one is taken over."""

from __future__ import annotations

import asyncio
import copy
import json
from datetime import UTC, datetime, timedelta
from typing import Any

from gpuplane.downscaler.leader import LeaderElector
from gpuplane.shared.kube_time import format_micro_time


class LeaseEndpoint:
    """GET/PUT on the Lease, POST on its collection; PUT needs the current version."""

    def __init__(self) -> None:
        self.lease: dict[str, Any] | None = None
        self.version = 0
        self.calls: list[str] = []

    def _store(self, lease: dict[str, Any]) -> tuple[int, Any]:
        self.version += 1
        self.lease = copy.deepcopy(lease)
        self.lease["metadata"]["resourceVersion"] = str(self.version)
        return 200, copy.deepcopy(self.lease)

    async def call(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        self.calls.append(method)
        assert path.startswith("/apis/coordination.k8s.io/v1/namespaces/ns/leases")
        body = json.loads(json.dumps(body)) if body is not None else None  # over the wire
        if method == "GET":
            return (200, copy.deepcopy(self.lease)) if self.lease else (404, None)
        if method == "POST":
            return (409, None) if self.lease else self._store(body)
        assert self.lease is not None and body is not None
        if body["metadata"].get("resourceVersion") != self.lease["metadata"]["resourceVersion"]:
            return 409, None
        return self._store(body)

    def someone_else(self, holder: str, renewed: datetime) -> None:
        self._store(
            {
                "metadata": {"name": "lease", "namespace": "ns"},
                "spec": {
                    "holderIdentity": holder,
                    "leaseDurationSeconds": 15,
                    "renewTime": format_micro_time(renewed),
                },
            }
        )


def run_with(endpoint: LeaseEndpoint, action: Any) -> Any:
    return asyncio.run(action(LeaderElector(endpoint, "ns", "lease", "me")))


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
