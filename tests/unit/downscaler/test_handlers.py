"""The kopf handlers: the wake clock stopped by the Deployment cache's callback, an invalid
policy's status written only when it changes, and the handlers as kopf calls them: the
finalizer restoring ledger counts (and holding the policy while a write is refused), the
policy daemon reporting an invalid spec once and stopping when asked."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

import kopf
import pytest

from gpuplane.downscaler.actuator import Actuator
from gpuplane.downscaler.deployment_cache import DeploymentCache
from gpuplane.downscaler.handlers import (
    OperatorContext,
    _conditions_differ,
    evaluate_policy,
    restore_on_delete,
    wake_watch,
)
from gpuplane.downscaler.ledger import ANNOTATION
from gpuplane.downscaler.metrics import OperatorMetrics
from gpuplane.downscaler.snapshot import DeploymentSnapshot
from gpuplane.downscaler.status import invalid_policy_status
from gpuplane.downscaler.wake import WakeTracker
from tests.unit.downscaler.fake_api_server import FakeApiServer
from tests.unit.kube_sessions import session_for

CREATED = datetime(2026, 11, 28, tzinfo=UTC)


def snapshot(ready: int) -> DeploymentSnapshot:
    return DeploymentSnapshot("ml", "llm", "uid", {}, 2, CREATED, None, 1, ready_replicas=ready)


def test_the_cache_callback_stops_a_wake_clock_once() -> None:
    wakes, metrics = WakeTracker(), OperatorMetrics()
    on_change = wake_watch(wakes, metrics)
    on_change(snapshot(2), "ml", "llm")  # not woken: nothing measured
    wakes.started("ml", "llm", 2, now=0.0)
    on_change(snapshot(1), "ml", "llm")
    assert wakes.pending("ml", "llm")
    on_change(snapshot(2), "ml", "llm")
    assert not wakes.pending("ml", "llm")
    assert metrics.wake_seconds._sum.get() > 0  # observed once, in real seconds since 0.0
    wakes.started("ml", "gone", 1, now=0.0)
    on_change(None, "ml", "gone")  # deleted before it was ready
    assert not wakes.pending("ml", "gone")


def test_an_invalid_policy_status_is_written_only_when_it_changes() -> None:
    first = invalid_policy_status("spec.interval must be longer than 0s", CREATED)
    later = invalid_policy_status("spec.interval must be longer than 0s", datetime.now(UTC))
    assert not _conditions_differ(later, first)  # only the transition time moved
    other = invalid_policy_status("spec.idleFor: '9h' is longer than 366 days", CREATED)
    assert _conditions_differ(other, first)
    assert _conditions_differ(first, None)


# The kopf-wired handlers themselves, called as kopf calls them (keyword arguments, the
# memo), against the in-memory API server and a Deployment cache filled from it.
SPEC = {
    "selector": {"matchLabels": {"app": "x"}},
    "interval": "10s",
    "idleFor": "30s",
    "signals": [{"name": "requests", "query": "sum by (deployment) (r)", "idleBelow": 0.05}],
    "wake": {"query": "sum by (deployment) (w)", "above": 0},
}


def operator(server: FakeApiServer) -> OperatorContext:
    cache = DeploymentCache(session_for("http://127.0.0.1:9"), [])
    cache.replace(None, [body for body in server.objects.values()])
    metrics = OperatorMetrics()
    return OperatorContext(
        server, Actuator(server, metrics), cache, metrics, "http://127.0.0.1:9", WakeTracker()
    )


def scaled_down(server: FakeApiServer, name: str, recorded: int) -> None:
    server.add("ml", name, 0)
    server.objects[("ml", name)]["metadata"]["annotations"][ANNOTATION] = str(recorded)


def delete_policy(context: OperatorContext, spec: dict[str, Any]) -> None:
    asyncio.run(
        restore_on_delete(
            spec=spec, status={}, name="idle", namespace="ml", uid="uid-policy",
            memo=SimpleNamespace(context=context),
        )
    )  # fmt: skip


def test_deleting_a_policy_restores_each_target_to_its_ledger_count() -> None:
    server = FakeApiServer()
    scaled_down(server, "llm", 3)
    server.add("ml", "busy", 2)
    context = operator(server)
    context.metrics.scaled_down.labels("ml", "idle").set(1)
    delete_policy(context, SPEC)
    assert (server.replicas("ml", "llm"), server.ledger("ml", "llm")) == (3, None)
    assert server.replicas("ml", "busy") == 2
    assert server.requests.count("PATCH ml/llm") == 1 and "PATCH ml/busy" not in server.requests
    assert context.metrics.restores.labels("policy-deleted")._value.get() == 1
    # The policy's own series go with it.
    assert ("ml", "idle") not in context.metrics.scaled_down._metrics


def test_a_dry_run_policy_restores_nothing_when_deleted() -> None:
    server = FakeApiServer()
    scaled_down(server, "llm", 3)
    delete_policy(operator(server), {**SPEC, "dryRun": True})
    assert server.replicas("ml", "llm") == 0 and server.ledger("ml", "llm") == "3"


def test_a_refused_restore_keeps_the_policy_until_it_succeeds() -> None:
    server = FakeApiServer()
    scaled_down(server, "llm", 2)
    context = operator(server)
    server.refusing = True
    with pytest.raises(kopf.TemporaryError, match="1 target"):
        delete_policy(context, SPEC)
    assert server.replicas("ml", "llm") == 0 and server.ledger("ml", "llm") == "2"
    server.refusing = False  # kopf calls the handler again
    delete_policy(context, SPEC)
    assert (server.replicas("ml", "llm"), server.ledger("ml", "llm")) == (2, None)


def test_an_invalid_policy_gets_one_status_and_the_daemon_stops_on_request() -> None:
    server = FakeApiServer()
    context = operator(server)

    async def run_daemon() -> None:
        stopped = AsyncFlag()
        daemon = asyncio.create_task(
            evaluate_policy(
                spec={**SPEC, "interval": "0s"}, status={}, name="idle", namespace="ml",
                uid="uid-policy", stopped=stopped, memo=SimpleNamespace(context=context),
            )
        )  # fmt: skip
        await asyncio.sleep(0.05)
        stopped.set()
        await asyncio.wait_for(daemon, 2)

    asyncio.run(run_daemon())
    assert server.requests == ["STATUS ml/idle"]
    (condition,) = server.statuses[0]["conditions"]
    assert condition["status"] == "False" and "interval" in condition["message"]


class AsyncFlag:
    """What the daemon uses of kopf's DaemonStopped: truthiness and ``wait(timeout)``."""

    def __init__(self) -> None:
        self._event = asyncio.Event()

    def __bool__(self) -> bool:
        return self._event.is_set()

    def set(self) -> None:
        self._event.set()

    async def wait(self, timeout: float | None = None) -> bool:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._event.wait(), timeout)
        return self._event.is_set()
