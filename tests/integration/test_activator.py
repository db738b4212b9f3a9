"""The activator with real processes on the sim cluster: the activator (its own
least-privilege token), the downscaler `gpuplane up` started, Prometheus scraping the
activator, and a backend process that runs only while its Deployment has ready replicas.
Covers: 50 requests held at zero all answered after a wake, 0 lost, the Deployment back at
exactly its ledger count; a backend that never becomes ready answers 503 after the max
hold; clients that leave free their slots; Server-Sent Events pass event by event; the
activator's token can request a wake and nothing else; one killed while holding still
wakes the Deployment once; two replicas each hold their own requests and wake it once;
`gpuplane status` lists the supervised activator while it runs."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2
import pytest
from lightkube import Client
from lightkube.core.exceptions import ApiError
from lightkube.resources.apps_v1 import Deployment
from lightkube.resources.core_v1 import Namespace

from gpuplane.backends.local.activator_service import start_activator, stop_activator
from gpuplane.backends.local.state import LocalState
from gpuplane.kube import connect
from tests.integration.activator_kit import (
    Activator,
    StandIn,
    activator_kubeconfig,
    routes_file,
    running_activator,
    service,
    stand_in,
)
from tests.integration.conftest import SimCluster
from tests.integration.downscaler_kit import (
    deployment,
    events,
    ledger,
    policy,
    replicas,
    services,
    wait_for,
)

CLUSTER = "gpuplane-it"
WAKE_ANNOTATION = "gpuplane.io/wake-requested"


def activator_signal(namespace: str) -> str:
    selector = f'gpuplane_activator_requests_total{{namespace="{namespace}"}}'
    return f"sum by (deployment) (rate({selector}[6s]))"


def backend(namespace: str, name: str, upstream_port: int, **extra: Any) -> dict[str, Any]:
    return {
        "name": name,
        "namespace": namespace,
        "deployment": name,
        "service": name,
        "upstream": f"http://127.0.0.1:{upstream_port}",
        "match": {"pathPrefix": f"/{namespace}/{name}/"},
        "stripPrefix": True,
        **extra,
    }


@pytest.fixture
def kubeconfig(sim_cluster: SimCluster, tmp_path: Path) -> Path:
    return activator_kubeconfig(
        sim_cluster.client, sim_cluster.kubeconfig, tmp_path / "activator.kubeconfig"
    )


def scale_to_zero_on(sim_cluster: SimCluster, ns: str, activator: Activator) -> None:
    """The downscaler scales echo to zero on ``activator``'s counter, which Prometheus
    scrapes meanwhile; the policy's wake is the gateway's series, silent here, so only a
    wake request brings echo back."""
    client = sim_cluster.client
    with scraped(sim_cluster, ns, activator):
        signal = {"name": "requests", "query": activator_signal(ns), "idleBelow": 0.05}
        client.create(policy(ns, signals=[signal]))
        wait_for("scale to zero", lambda: replicas(client, ns, "echo") == 0, 90)


@contextlib.contextmanager
def scraped(sim_cluster: SimCluster, ns: str, activator: Activator) -> Iterator[None]:
    """Prometheus scrapes ``activator`` while inside (its counter is a policy's signal)."""
    registry = services(sim_cluster.env, CLUSTER)
    port = activator.metrics_url.rsplit(":", 1)[1]
    registry.add_scrape_target(f"{ns}-activator", f"127.0.0.1:{port}", {})
    try:
        yield
    finally:
        registry.remove_scrape_target(f"{ns}-activator")


@contextlib.contextmanager
def fronted(
    sim_cluster: SimCluster, ns: str, name: str, count: int, tmp_path: Path
) -> Iterator[tuple[StandIn, Path]]:
    """Deployment ``name`` at ``count`` replicas and its Service, a stand-in backend that
    runs while the Deployment has ready replicas, and the activator's routes file for it."""
    client = sim_cluster.client
    client.create(deployment(ns, name, count))
    client.create(service(ns, name))
    with stand_in(client, ns, name, tmp_path / "backend.log") as backend_process:
        yield backend_process, routes_file(tmp_path, [backend(ns, name, backend_process.port)])


def held(activator: Activator, namespace: str, name: str) -> float:
    return activator.metric(
        "gpuplane_activator_held_requests", namespace=namespace, deployment=name
    )


def test_requests_held_at_zero_are_all_served_after_one_wake(
    sim_cluster: SimCluster, ns: str, tmp_path: Path, kubeconfig: Path
) -> None:
    client = sim_cluster.client
    with (
        fronted(sim_cluster, ns, "echo", 2, tmp_path) as (_, routes),
        running_activator(routes, kubeconfig, tmp_path / "activator.log") as activator,
        scraped(sim_cluster, ns, activator),
    ):
        signal = {"name": "requests", "query": activator_signal(ns), "idleBelow": 0.05}
        wake = {"query": activator_signal(ns), "above": 0.05}
        client.create(policy(ns, signals=[signal], wake=wake))
        wait_for("scale to zero", lambda: replicas(client, ns, "echo") == 0, 90)
        assert ledger(client, ns, "echo") == "2"
        wait_for("no ready endpoint", lambda: activator.metric(
            "gpuplane_activator_ready_endpoints", namespace=ns) == 0, 30)  # fmt: skip
        started = time.monotonic()
        answers = asyncio.run(burst(activator.url, ns, 50))
        elapsed = time.monotonic() - started
        failed = [(i, a) for i, a in enumerate(answers) if a[0] != 200]
        assert not failed, (failed, activator.log.read_text()[-3000:])
        assert all(a[1]["body"] == f"request {i}" for i, a in enumerate(answers))
        assert all(a[1]["path"] == "/echo" for a in answers)
        assert replicas(client, ns, "echo") == 2  # exactly the ledger's count
        assert ledger(client, ns, "echo") is None
        live = client.get(Deployment, "echo", namespace=ns)
        assert WAKE_ANNOTATION not in ((live.metadata.annotations if live.metadata else None) or {})
        assert activator.metric("gpuplane_activator_lost_requests_total") == 0
        assert held(activator, ns, "echo") == 0
        holds = activator.metric("gpuplane_activator_hold_seconds_count", namespace=ns)
        assert holds == 50
        restores = [m for _, m in events(client, ns, "Restore") if "wake requested" in m]
        assert restores, events(client, ns, "Restore")
        print(f"50 held requests answered in {elapsed:.2f}s")


async def burst(url: str, namespace: str, count: int) -> list[tuple[int, Any]]:
    async with httpx2.AsyncClient(trust_env=False, timeout=120) as http:
        answers = await asyncio.gather(
            *(
                http.post(f"{url}/{namespace}/echo/echo", content=f"request {i}")
                for i in range(count)
            )
        )
    return [(a.status_code, a.json() if a.status_code == 200 else a.text) for a in answers]


@pytest.fixture
def ghost(sim_cluster: SimCluster, ns: str) -> Iterator[str]:
    """A Deployment at zero that nothing wakes (no policy, no ledger): never ready."""
    sim_cluster.client.create(deployment(ns, "ghost", 0))
    sim_cluster.client.create(service(ns, "ghost"))
    yield "ghost"


def test_a_backend_that_never_becomes_ready_gets_503_after_max_hold(
    ns: str, ghost: str, tmp_path: Path, kubeconfig: Path
) -> None:
    routes = routes_file(tmp_path, [backend(ns, ghost, 9)], maxHoldSeconds=2)
    with running_activator(routes, kubeconfig, tmp_path / "activator.log") as activator:

        async def ten() -> list[httpx2.Response]:
            async with httpx2.AsyncClient(trust_env=False, timeout=30) as http:
                return list(
                    await asyncio.gather(
                        *(http.get(f"{activator.url}/{ns}/ghost/x") for _ in range(10))
                    )
                )

        started = time.monotonic()
        answers = asyncio.run(ten())
        elapsed = time.monotonic() - started
        assert [a.status_code for a in answers] == [503] * 10
        assert all(a.headers["Retry-After"] for a in answers)
        assert 2 <= elapsed < 8, elapsed  # held for the max hold, then answered: nothing hangs
        assert activator.metric("gpuplane_activator_lost_requests_total", reason="timeout") == 10
        assert held(activator, ns, ghost) == 0


def test_clients_that_leave_free_their_slots(
    ns: str, ghost: str, tmp_path: Path, kubeconfig: Path
) -> None:
    routes = routes_file(tmp_path, [backend(ns, ghost, 9)], maxHeld=5, maxHoldSeconds=60)
    with running_activator(routes, kubeconfig, tmp_path / "activator.log") as activator:

        async def leave_then_fill() -> tuple[float, int]:
            async with httpx2.AsyncClient(trust_env=False, timeout=60) as http:
                leaving = [
                    asyncio.create_task(http.get(f"{activator.url}/{ns}/ghost/a")) for _ in range(5)
                ]
                await wait_async(lambda: held(activator, ns, ghost) == 5)
                for task in leaving:
                    task.cancel()
                await wait_async(lambda: held(activator, ns, ghost) == 0)
                staying = [
                    asyncio.create_task(http.get(f"{activator.url}/{ns}/ghost/b")) for _ in range(5)
                ]
                await wait_async(lambda: held(activator, ns, ghost) == 5)
                extra = await http.get(f"{activator.url}/{ns}/ghost/c")
                filled = held(activator, ns, ghost)
                for task in staying:
                    task.cancel()
                return filled, extra.status_code

        filled, extra = asyncio.run(leave_then_fill())
        assert filled == 5
        assert extra == 503  # the sixth is over maxHeld: refused at once
        assert activator.metric("gpuplane_activator_lost_requests_total", reason="rejected") == 1


async def wait_async(condition: Any, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not await asyncio.to_thread(condition):
        if time.monotonic() > deadline:
            raise AssertionError("timed out")
        await asyncio.sleep(0.1)


def test_server_sent_events_pass_event_by_event(
    sim_cluster: SimCluster, ns: str, tmp_path: Path, kubeconfig: Path
) -> None:
    with (
        fronted(sim_cluster, ns, "events", 1, tmp_path) as (backend_process, routes),
        running_activator(routes, kubeconfig, tmp_path / "activator.log") as activator,
    ):
        wait_for("backend up", lambda: backend_process.starts >= 1, 30)
        arrivals: list[tuple[float, str]] = []
        started = time.monotonic()
        with (
            httpx2.Client(trust_env=False, timeout=30) as http,
            http.stream("GET", f"{activator.url}/{ns}/events/sse") as stream,
        ):
            assert stream.status_code == 200
            for line in stream.iter_lines():
                if line.startswith("data: "):
                    arrivals.append((time.monotonic() - started, line))
    assert [line for _, line in arrivals] == [f"data: event {i}" for i in range(5)]
    # Each event arrives as sent (0.3 s apart), not all at the end of the stream.
    assert arrivals[-1][0] - arrivals[0][0] >= 1.0, arrivals


def test_the_activator_token_may_request_a_wake_and_nothing_else(
    sim_cluster: SimCluster, ns: str, kubeconfig: Path
) -> None:
    sim_cluster.client.create(deployment(ns, "guarded", 1))
    own: Client = connect(kubeconfig)
    own.patch(
        Deployment,
        "guarded",
        {"metadata": {"annotations": {WAKE_ANNOTATION: "2026-11-28T10:00:00Z"}}},
        namespace=ns,
    )
    for forbidden in (
        {"spec": {"replicas": 5}},
        {"metadata": {"annotations": {"gpuplane.io/original-replicas": "9"}}},
        {"metadata": {"labels": {"app.kubernetes.io/part-of": "other"}}},
        {"metadata": {"finalizers": ["example.com/block-deletion"]}},
        {
            "metadata": {
                "ownerReferences": [
                    {"apiVersion": "v1", "kind": "ConfigMap", "name": "x", "uid": "1234"}
                ]
            }
        },
    ):
        with pytest.raises(ApiError) as refused:
            own.patch(Deployment, "guarded", forbidden, namespace=ns)
        assert refused.value.status.code in (403, 422), forbidden
    assert replicas(sim_cluster.client, ns, "guarded") == 1
    with pytest.raises(ApiError) as scale:
        own.patch(Deployment.Scale, "guarded", {"spec": {"replicas": 0}}, namespace=ns)
    assert scale.value.status.code == 403


UNSCHEDULABLE = {
    "spec": {"template": {"spec": {"nodeSelector": {"gpuplane.io/test": "no-such-node"}}}}
}


def test_an_activator_killed_while_holding_still_wakes_the_deployment_once(
    sim_cluster: SimCluster, ns: str, tmp_path: Path, kubeconfig: Path
) -> None:
    """The wake request is written before anything is answered: SIGKILL the activator
    while it holds requests, and its clients see the connection drop, while the Deployment
    is restored exactly once, to its ledger count."""
    client = sim_cluster.client
    # Scaled down by the downscaler first (no traffic: the activator's counter reads 0).
    with fronted(sim_cluster, ns, "echo", 3, tmp_path) as (backend_process, routes):
        with running_activator(routes, kubeconfig, tmp_path / "first.log") as activator:
            scale_to_zero_on(sim_cluster, ns, activator)
        # Keep the backend down: the restore must not depend on anything being served.
        backend_process.close()
        # And keep the woken pods unschedulable, so the five stay held until the kill: a
        # pod that turned Ready first would send its request to the closed backend.
        client.patch(Deployment, "echo", UNSCHEDULABLE, namespace=ns)
        with running_activator(routes, kubeconfig, tmp_path / "second.log") as activator:

            async def hold_then_kill() -> list[BaseException | httpx2.Response]:
                async with httpx2.AsyncClient(trust_env=False, timeout=60) as http:
                    calls = [
                        asyncio.create_task(http.get(f"{activator.url}/{ns}/echo/echo"))
                        for _ in range(5)
                    ]
                    await wait_async(lambda: held(activator, ns, "echo") == 5)
                    activator.process.kill()
                    return list(await asyncio.gather(*calls, return_exceptions=True))

            outcomes = asyncio.run(hold_then_kill())
    assert all(isinstance(outcome, httpx2.TransportError) for outcome in outcomes), outcomes
    wait_for("the wake", lambda: replicas(client, ns, "echo") == 3, 30)
    time.sleep(5)  # several cycles later: still one restore, still 3
    assert replicas(client, ns, "echo") == 3
    assert ledger(client, ns, "echo") is None
    restores = [m for kind, m in events(client, ns, "Restore") if kind == "Deployment"]
    assert len(restores) == 1, events(client, ns, "Restore")
    assert "wake requested by the activator" in restores[0]


def test_two_activators_hold_their_own_requests_and_the_deployment_wakes_once(
    sim_cluster: SimCluster, ns: str, tmp_path: Path, kubeconfig: Path
) -> None:
    """Several replicas can run: two activator processes front the same Deployment at
    zero, each holds the requests sent to it and asks for a wake; the wake requests are
    idempotent, so the Deployment is restored once, to its ledger count, and every request
    on both is answered."""
    client = sim_cluster.client
    with (
        fronted(sim_cluster, ns, "echo", 2, tmp_path) as (_, routes),
        running_activator(routes, kubeconfig, tmp_path / "a.log") as first,
        running_activator(routes, kubeconfig, tmp_path / "b.log") as second,
    ):
        scale_to_zero_on(sim_cluster, ns, first)  # its counter at 0: the idle signal
        for activator in (first, second):
            wait_for("no ready endpoint", lambda a=activator: a.metric(
                "gpuplane_activator_ready_endpoints", namespace=ns) == 0, 30)  # fmt: skip

        async def both() -> list[list[tuple[int, Any]]]:
            return list(await asyncio.gather(burst(first.url, ns, 20), burst(second.url, ns, 20)))

        answers = asyncio.run(both())
        for activator, got in zip((first, second), answers, strict=True):
            log = activator.log.read_text()[-2000:]
            assert [code for code, _ in got] == [200] * 20, (got, log)
            held_count = activator.metric("gpuplane_activator_hold_seconds_count")
            asked = activator.metric("gpuplane_activator_wake_requests_total")
            assert (held_count, asked >= 1) == (20, True), (held_count, asked, log)
    time.sleep(5)  # several cycles later: still one restore, still the ledger's count
    assert (replicas(client, ns, "echo"), ledger(client, ns, "echo")) == (2, None)
    restores = [m for kind, m in events(client, ns, "Restore") if kind == "Deployment"]
    assert len(restores) == 1, events(client, ns, "Restore")


def test_status_lists_the_supervised_activator_while_it_runs(sim_cluster: SimCluster) -> None:
    """The activator the local backend runs on demand (the demo's wake act) is a component
    of `gpuplane status` while it runs, with where Prometheus scrapes it; gone once stopped."""
    client = sim_cluster.client
    ns = "status-activator"
    client.create(Namespace.from_dict({"metadata": {"name": ns}}))
    state = LocalState(sim_cluster.kubeconfig.parent.parent, CLUSTER)
    try:
        address = start_activator(
            state, client, [backend(ns, "echo", 9)], {"maxHeld": 10, "maxHoldSeconds": 30}
        )
        listed = json.loads(sim_cluster.cli("status", "-o", "json").stdout)
        (activator,) = [c for c in listed["components"] if c["name"] == "activator"]
        assert activator["running"] is True
        assert f"metrics {address.metrics_url}/metrics" in activator["detail"]
    finally:
        stop_activator(state)
        client.delete(Namespace, ns)
    listed = json.loads(sim_cluster.cli("status", "-o", "json").stdout)
    assert "activator" not in [c["name"] for c in listed["components"]]
