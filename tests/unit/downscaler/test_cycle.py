"""One policy's cycles against an in-memory API server and fixed Prometheus answers, with
fake time: status written only when a decision changes (never for a moving reading), one
conditional write per action carrying ledger and replicas together, a conflict re-read and
decided again (never forced), Events aggregated, dryRun writing nothing, and an evaluator
rebuilt from the status carrying on."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

from gpuplane.downscaler.actuator import EVENTS_PER_DEPLOYMENT_LIMIT, Actuator
from gpuplane.downscaler.cycle import PolicyEvaluator
from gpuplane.downscaler.ledger import ANNOTATION
from gpuplane.downscaler.metrics import OperatorMetrics
from gpuplane.downscaler.policy import parse_policy
from gpuplane.downscaler.readings import QueryResult
from gpuplane.downscaler.resource import policy_ref
from gpuplane.downscaler.status import PolicyState
from tests.unit.downscaler.fake_api_server import T0, FakeApiServer

NS = "ml"
REQUESTS = 'sum by (deployment) (rate(http_requests_total{namespace="ml"}[1m]))'
WAKE = 'sum by (deployment) (rate(gateway_requests_total{namespace="ml"}[1m]))'
SPEC = {
    "selector": {"matchLabels": {"app": "x"}},
    "interval": "10s",
    "idleFor": "30s",
    "gracePeriod": "1s",
    "signals": [{"name": "requests", "query": REQUESTS, "idleBelow": 0.05}],
    "wake": {"query": WAKE, "above": 0},
}


class FixedPrometheus:
    """Answers per query and target, set by the test; sample time is the fake now."""

    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock
        self.values: dict[str, dict[str, float]] = {REQUESTS: {}, WAKE: {}}
        self.asked: list[str] = []

    async def query(self, promql: str, target_label: str) -> QueryResult:
        self.asked.append(promql)
        now = self.clock()
        return QueryResult({name: (value, now) for name, value in self.values[promql].items()})


class FakeClock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now

    def tick(self, seconds: float = 10) -> None:
        self.now += timedelta(seconds=seconds)


class Harness:
    def __init__(self, spec: dict[str, object] | None = None, state: PolicyState | None = None):
        self.server = FakeApiServer()
        self.clock = FakeClock()
        self.prometheus = FixedPrometheus(self.clock)
        self.metrics = OperatorMetrics()
        self.policy = parse_policy(dict(spec or SPEC))
        self.evaluator = PolicyEvaluator(
            policy_ref(NS, "idle", "uid-policy"),
            self.server,
            Actuator(self.server, self.metrics),
            self.metrics,
            state or PolicyState(),
            clock=self.clock,
        )

    def traffic(self, name: str, requests: float, wake: float = 0.0) -> None:
        self.prometheus.values[REQUESTS][name] = requests
        self.prometheus.values[WAKE][name] = wake

    def cycle(self, seconds: float = 10) -> None:
        asyncio.run(self.evaluator.cycle(self.policy, self.prometheus, self.server.snapshots()))
        self.clock.tick(seconds)

    def target(self, name: str) -> dict[str, object]:
        targets = self.server.statuses[-1]["targets"]
        return next(dict(target) for target in targets if target["name"] == name)

    def count(self, prefix: str) -> int:
        return sum(request.startswith(prefix) for request in self.server.requests)


def test_moving_readings_write_no_status_once_decisions_settle() -> None:
    harness = Harness()
    harness.server.add(NS, "busy", 2)
    for rate in (3.0, 3.7, 2.9, 4.2, 3.3):
        harness.traffic("busy", rate)
        harness.cycle()
    assert harness.count("STATUS") == 1  # the first cycle only
    assert harness.server.requests == [f"STATUS {NS}/idle"]
    assert harness.target("busy")["reason"] == "requests >= 0.05"
    assert harness.metrics.targets.labels(NS, "idle", "Active")._value.get() == 1


def test_scale_down_is_one_conditional_write_with_ledger_and_replicas() -> None:
    harness = Harness()
    harness.server.add(NS, "llm", 3)
    harness.traffic("llm", 0.0)
    for _ in range(4):  # idle at 0s, 10s, 20s, 30s: idleFor 30s reached on the fourth
        harness.cycle()
    assert harness.server.replicas(NS, "llm") == 0
    assert harness.server.ledger(NS, "llm") == "3"
    assert harness.count("PATCH") == 1 and harness.count("GET") == 0
    target = harness.target("llm")
    assert target["state"] == "ScaledDown" and target["originalReplicas"] == 3
    assert target["lastAction"]["type"] == "ScaleDown"  # type: ignore[index]
    kinds = sorted(kind for kind, reason, _ in harness.server.events if reason == "ScaleDown")
    assert kinds == ["Deployment", "DownscalePolicy"]
    # the next cycles read the same: nothing written
    before = len(harness.server.requests)
    harness.cycle()
    harness.cycle()
    assert harness.server.requests[before:] == []


def test_many_actions_cost_one_write_each_and_one_summary_event() -> None:
    harness = Harness({**SPEC, "idleFor": "10s"})
    names = [f"d-{index:03d}" for index in range(40)]
    for name in names:
        harness.server.add(NS, name, 2)
        harness.traffic(name, 0.0)
    harness.cycle()
    writes_before = harness.count("PATCH")
    harness.cycle()
    assert all(harness.server.replicas(NS, name) == 0 for name in names)
    assert harness.count("PATCH") - writes_before == 40
    assert len(names) > EVENTS_PER_DEPLOYMENT_LIMIT
    events = [event for event in harness.server.events if event[1] == "ScaleDown"]
    assert len(events) == 1 and events[0][0] == "DownscalePolicy"
    assert events[0][2].startswith("ScaleDown 40 Deployment(s): d-000, d-001")
    assert events[0][2].endswith("(+20 more)")


def test_wake_restores_the_exact_count_in_one_write() -> None:
    harness = Harness({**SPEC, "idleFor": "10s"})
    harness.server.add(NS, "llm", 4)
    harness.traffic("llm", 0.0)
    harness.cycle()
    harness.cycle()
    assert harness.server.replicas(NS, "llm") == 0
    writes = harness.count("PATCH")
    harness.traffic("llm", 0.0, wake=0.5)
    harness.cycle()
    assert harness.server.replicas(NS, "llm") == 4
    assert harness.server.ledger(NS, "llm") is None
    assert harness.count("PATCH") - writes == 1
    assert harness.metrics.restores.labels("wake")._value.get() == 1
    assert harness.target("llm")["reason"] == "restored 4 replica(s): wake"
    assert harness.evaluator.wakes.pending(NS, "llm")


def test_a_conflict_is_read_again_and_decided_on_what_is_there() -> None:
    harness = Harness({**SPEC, "idleFor": "10s", "gracePeriod": "1m"})
    harness.server.add(NS, "llm", 3)
    harness.traffic("llm", 0.0)
    harness.clock.tick(3600)  # long after creation: out of the grace period
    harness.cycle()
    stale = harness.server.snapshots()  # what the watch cache holds
    harness.server.user_writes(NS, "llm", 5)  # a user scales up after the cache read
    asyncio.run(harness.evaluator.cycle(harness.policy, harness.prometheus, stale))
    # re-read: still idle, so scaled down from what is really there, and recorded as such
    assert harness.count("GET") == 1
    assert harness.server.replicas(NS, "llm") == 0
    assert harness.server.ledger(NS, "llm") == "5"
    assert harness.metrics.write_conflicts._value.get() == 1


def test_a_user_scale_seen_only_on_re_read_wins_over_a_wake() -> None:
    harness = Harness({**SPEC, "idleFor": "10s"})
    harness.server.add(NS, "llm", 3)
    harness.traffic("llm", 0.0)
    harness.cycle()
    harness.cycle()
    stale = harness.server.snapshots()
    harness.server.user_writes(NS, "llm", 2)  # the user brings it back by hand: 2, not 3
    harness.traffic("llm", 0.0, wake=1.0)
    asyncio.run(harness.evaluator.cycle(harness.policy, harness.prometheus, stale))
    assert harness.server.replicas(NS, "llm") == 2  # never forced back to the ledger's 3
    assert harness.server.ledger(NS, "llm") is None  # released
    assert harness.metrics.restores.labels("wake")._value.get() == 0


def test_a_deleted_deployment_is_no_error_and_is_forgotten() -> None:
    harness = Harness({**SPEC, "idleFor": "10s"})
    harness.server.add(NS, "llm", 3)
    harness.traffic("llm", 0.0)
    harness.cycle()
    stale = harness.server.snapshots()
    del harness.server.objects[(NS, "llm")]
    asyncio.run(harness.evaluator.cycle(harness.policy, harness.prometheus, stale))
    assert harness.metrics.write_errors._value.get() == 0
    harness.cycle()
    assert harness.server.statuses[-1]["targets"] == []


def test_dry_run_decides_and_tells_but_writes_nothing() -> None:
    harness = Harness({**SPEC, "idleFor": "10s", "dryRun": True})
    harness.server.add(NS, "llm", 3)
    harness.traffic("llm", 0.0)
    harness.cycle()
    harness.cycle()
    assert harness.count("PATCH") == 0 and harness.server.replicas(NS, "llm") == 3
    assert ANNOTATION not in harness.server.objects[(NS, "llm")]["metadata"]["annotations"]
    assert [reason for _, reason, _ in harness.server.events] == [
        "DryRunScaleDown",
        "DryRunScaleDown",
    ]
    assert harness.target("llm")["state"] == "Running"


def test_an_evaluator_rebuilt_from_the_status_carries_on() -> None:
    first = Harness()
    first.server.add(NS, "llm", 3)
    first.traffic("llm", 0.0)
    first.cycle()
    first.cycle()  # idle for 10s of 30s
    rebuilt = Harness(state=PolicyState.from_status(first.server.statuses[-1]))
    rebuilt.server = first.server
    rebuilt.clock.now = first.clock.now
    rebuilt.evaluator.api = first.server
    rebuilt.evaluator.actuator = Actuator(first.server, rebuilt.metrics)
    rebuilt.traffic("llm", 0.0)
    rebuilt.cycle()  # 20s
    assert rebuilt.server.replicas(NS, "llm") == 3
    rebuilt.cycle()  # 30s: the streak survived the restart
    assert rebuilt.server.replicas(NS, "llm") == 0


def test_a_wake_on_the_signal_query_asks_prometheus_once() -> None:
    same = {**SPEC, "wake": {"query": REQUESTS, "above": 0.5}}
    harness = Harness(same)
    harness.server.add(NS, "llm", 1)
    harness.traffic("llm", 2.0)
    harness.cycle()
    assert harness.prometheus.asked == [REQUESTS]
    assert harness.target("llm")["verdict"] == "Active"
    separate = Harness()
    separate.server.add(NS, "llm", 1)
    separate.cycle()
    assert sorted(separate.prometheus.asked) == sorted([REQUESTS, WAKE])
