"""One evaluation cycle of one policy: query, decide, act, report.

Per cycle: one query per signal plus one for wake (whatever the number of targets),
targets read from the watch cache, and writes only for targets that act plus one status
patch when the status changed. Ledger first, then scale: see ``ledger``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from gpuplane.downscaler.decide import (
    Action,
    Decision,
    Memory,
    Observation,
    Target,
    TargetState,
    decide,
)
from gpuplane.downscaler.kubeio import GROUP, KIND, VERSION, KubeWriter, timestamp
from gpuplane.downscaler.ledger import ledger_value
from gpuplane.downscaler.metrics import OperatorMetrics
from gpuplane.downscaler.policy import Policy, Signal
from gpuplane.downscaler.prometheus import PrometheusClient
from gpuplane.downscaler.readings import QueryResult, read_signal
from gpuplane.downscaler.snapshot import DeploymentSnapshot, parse_time
from gpuplane.downscaler.wake import WakeTracker

log = logging.getLogger(__name__)


def utcnow() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


@dataclass
class PolicyState:
    """What an evaluator remembers; rebuilt from the policy status after a restart."""

    memory: dict[str, Memory] = field(default_factory=dict)
    status_ledger: dict[str, int] = field(default_factory=dict)
    last_action: dict[str, dict[str, str]] = field(default_factory=dict)
    metrics_lost_since: datetime | None = None
    conditions: dict[str, dict[str, str]] = field(default_factory=dict)
    last_status: dict[str, Any] | None = None

    @classmethod
    def from_status(cls, status: dict[str, Any] | None) -> PolicyState:
        state = cls()
        for target in (status or {}).get("targets") or []:
            name = target.get("name")
            if not name:
                continue
            state.memory[name] = Memory(
                idle_since=parse_time(target.get("idleSince")),
                protected_until=parse_time(target.get("protectedUntil")),
            )
            if target.get("originalReplicas"):
                state.status_ledger[name] = int(target["originalReplicas"])
            if target.get("lastAction"):
                state.last_action[name] = dict(target["lastAction"])
        for condition in (status or {}).get("conditions") or []:
            state.conditions[condition["type"]] = dict(condition)
        metrics = state.conditions.get("MetricsAvailable")
        if metrics and metrics.get("status") == "False":
            state.metrics_lost_since = parse_time(metrics.get("lastTransitionTime"))
        return state


@dataclass(frozen=True)
class PolicyRef:
    namespace: str
    name: str
    uid: str

    def involved(self) -> dict[str, str]:
        return {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": KIND,
            "name": self.name,
            "namespace": self.namespace,
            "uid": self.uid,
        }


def deployment_ref(deployment: DeploymentSnapshot) -> dict[str, str]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": deployment.name,
        "namespace": deployment.namespace,
        "uid": deployment.uid,
    }


class PolicyEvaluator:
    def __init__(
        self,
        ref: PolicyRef,
        writer: KubeWriter,
        metrics: OperatorMetrics,
        state: PolicyState,
        *,
        clock: Callable[[], datetime] = utcnow,
        monotonic: Callable[[], float] = time.monotonic,
        wakes: WakeTracker | None = None,
    ) -> None:
        self.ref = ref
        self.writer = writer
        self.metrics = metrics
        self.state = state
        self.clock = clock
        self.monotonic = monotonic
        # Shared with the Deployment watch (handlers.wake_completed), which stops the clock.
        self.wakes = wakes or WakeTracker()

    async def _query_all(
        self, policy: Policy, prometheus: PrometheusClient
    ) -> tuple[list[QueryResult], QueryResult | None]:
        queries = [prometheus.query(signal.query, signal.target_label) for signal in policy.signals]
        if policy.wake is not None:
            queries.append(prometheus.query(policy.wake.query, policy.wake.target_label))
        results = list(await asyncio.gather(*queries))
        self.metrics.queries.inc(len(results))
        self.metrics.query_errors.inc(sum(result.error is not None for result in results))
        wake = results.pop() if policy.wake is not None else None
        return results, wake

    async def cycle(
        self, policy: Policy, prometheus: PrometheusClient, deployments: list[DeploymentSnapshot]
    ) -> list[Decision]:
        started = time.perf_counter()
        now = self.clock()
        results, wake_result = await self._query_all(policy, prometheus)
        every = [*results, *([wake_result] if wake_result else [])]
        unreachable = any(result.unreachable for result in every)
        if unreachable:
            self.state.metrics_lost_since = self.state.metrics_lost_since or now
        else:
            self.state.metrics_lost_since = None
        query_errors = sorted(
            {
                f"{name}: {result.error}"
                for name, result in zip(
                    [s.name for s in policy.signals] + (["wake"] if wake_result else []),
                    every,
                    strict=True,
                )
                if result.error and not result.unreachable
            }
        )
        wake_signal = (
            Signal("wake", policy.wake.query, policy.wake.above, policy.wake.target_label)
            if policy.wake is not None
            else None
        )
        decisions: list[tuple[DeploymentSnapshot, Decision]] = []
        for deployment in sorted(deployments, key=lambda d: d.name):
            readings = tuple(
                read_signal(signal, result, deployment.name, now, policy.stale_after)
                for signal, result in zip(policy.signals, results, strict=True)
            )
            wake = None
            if wake_signal is not None and wake_result is not None:
                wake = read_signal(
                    wake_signal, wake_result, deployment.name, now, policy.stale_after
                )
            target = Target(
                name=deployment.name,
                replicas=deployment.replicas,
                created=deployment.created,
                recorded=ledger_value(
                    deployment.recorded, self.state.status_ledger.get(deployment.name)
                ),
            )
            decision = decide(
                target,
                Observation(readings, wake, self.state.metrics_lost_since),
                policy,
                self.state.memory.get(deployment.name, Memory()),
                now,
            )
            self.metrics.decisions.labels(decision.verdict.value).inc()
            decisions.append((deployment, decision))
        await self._act(policy, decisions, now)
        await self._report(policy, decisions, now=now, query_errors=query_errors, results=every)
        self.metrics.evaluation.observe(time.perf_counter() - started)
        return [decision for _, decision in decisions]

    async def _act(
        self, policy: Policy, decisions: list[tuple[DeploymentSnapshot, Decision]], now: datetime
    ) -> None:
        live = {deployment.name for deployment, _ in decisions}
        for name in list(self.state.memory):
            if name not in live:
                self.state.memory.pop(name, None)
                self.state.status_ledger.pop(name, None)
        scaling = [
            (d, decision) for d, decision in decisions if decision.action is Action.SCALE_DOWN
        ]
        if not policy.dry_run and scaling:
            # The ledger goes first, on the Deployment and in the status, then the scale.
            for deployment, decision in scaling:
                if decision.record is not None:
                    await self.writer.write_ledger(
                        deployment.namespace, deployment.name, decision.record
                    )
                    self.state.status_ledger[deployment.name] = decision.record
            await self.writer.patch_status(
                self.ref.namespace,
                self.ref.name,
                {"targets": self._targets(decisions, include_pending=True)},
            )
        for deployment, decision in decisions:
            self.state.memory[deployment.name] = decision.memory
            if decision.action is None:
                continue
            await self._apply(policy, deployment, decision, now)

    async def _apply(
        self, policy: Policy, deployment: DeploymentSnapshot, decision: Decision, now: datetime
    ) -> None:
        kind = decision.action.value if decision.action is not None else "None"
        if policy.dry_run:
            kind = f"DryRun{kind}"
        elif decision.action is Action.SCALE_DOWN:
            await self.writer.scale(deployment.namespace, deployment.name, 0)
            self.metrics.scale_downs.inc()
        elif decision.action is Action.RESTORE and decision.restore_to is not None:
            cause = decision.reason.split(":", 1)[0].split(" ", 1)[0]
            if cause == "wake":
                # The clock starts before the scale: the watch may show the replicas
                # ready before this coroutine resumes.
                self.wakes.started(
                    deployment.namespace, deployment.name, decision.restore_to, self.monotonic()
                )
            await self.writer.scale(deployment.namespace, deployment.name, decision.restore_to)
            await self.writer.write_ledger(deployment.namespace, deployment.name, None)
            self.state.status_ledger.pop(deployment.name, None)
            self.metrics.restores.labels(cause).inc()
        elif decision.action is Action.RELEASE:
            await self.writer.write_ledger(deployment.namespace, deployment.name, None)
            self.state.status_ledger.pop(deployment.name, None)
        self.state.last_action[deployment.name] = {
            "type": kind,
            "time": timestamp(now),
            "reason": decision.reason,
        }
        message = f"{kind} {deployment.namespace}/{deployment.name}: {decision.reason}"
        log.info("%s", message)
        await self.writer.event(deployment_ref(deployment), kind, message, now)
        await self.writer.event(self.ref.involved(), kind, message, now)

    def _targets(
        self,
        decisions: list[tuple[DeploymentSnapshot, Decision]],
        *,
        include_pending: bool = False,
        dry_run: bool = False,
    ) -> list[dict[str, Any]]:
        targets = []
        for deployment, decision in decisions:
            memory = decision.memory
            ledger = self.state.status_ledger.get(deployment.name)
            state = decision.state
            if decision.action is Action.SCALE_DOWN and (include_pending or dry_run):
                # Not scaled (yet): only the ledger is written, or nothing at all (dryRun).
                state = TargetState.RUNNING
            targets.append(
                {
                    "name": deployment.name,
                    "verdict": decision.verdict.value,
                    "idleSince": timestamp(memory.idle_since) if memory.idle_since else None,
                    "protectedUntil": timestamp(memory.protected_until)
                    if memory.protected_until
                    else None,
                    "originalReplicas": ledger,
                    "state": state.value,
                    "reason": decision.reason[:120],
                    "lastAction": self.state.last_action.get(deployment.name),
                }
            )
        return targets

    def _condition(
        self, kind: str, ok: bool, reason: str, message: str, now: datetime
    ) -> dict[str, str]:
        status = "True" if ok else "False"
        previous = self.state.conditions.get(kind)
        since = (
            previous["lastTransitionTime"]
            if previous and previous.get("status") == status
            else timestamp(now)
        )
        condition = {
            "type": kind,
            "status": status,
            "reason": reason,
            "message": message[:1024],
            "lastTransitionTime": since,
        }
        self.state.conditions[kind] = condition
        return condition

    async def _report(
        self,
        policy: Policy,
        decisions: list[tuple[DeploymentSnapshot, Decision]],
        *,
        now: datetime,
        query_errors: list[str],
        results: list[QueryResult],
    ) -> None:
        unreachable = any(result.unreachable for result in results)
        scaled = [
            (d, decision)
            for d, decision in decisions
            if decision.state is TargetState.SCALED_DOWN and not policy.dry_run
        ]
        self.metrics.scaled_down.labels(self.ref.namespace, self.ref.name).set(len(scaled))
        self.metrics.gpus_reclaimed.labels(self.ref.namespace, self.ref.name).set(
            sum(
                (self.state.status_ledger.get(d.name) or d.recorded or 0) * d.gpus_per_replica
                for d, _ in scaled
            )
        )
        self.metrics.metrics_available.labels(self.ref.namespace, self.ref.name).set(
            0 if unreachable else 1
        )
        down_error = next((r.error for r in results if r.unreachable and r.error), "")
        ready = self._condition(
            "Ready",
            not query_errors,
            "QueryError" if query_errors else "Evaluating",
            "; ".join(query_errors) if query_errors else f"{len(decisions)} target(s) evaluated",
            now,
        )
        metrics = self._condition(
            "MetricsAvailable",
            not unreachable,
            "PrometheusUnreachable" if unreachable else "QueriesAnswered",
            f"Prometheus unreachable: {down_error}" if unreachable else "every query answered",
            now,
        )
        status = {
            "conditions": [ready, metrics],
            "targets": self._targets(decisions, dry_run=policy.dry_run),
        }
        if status != self.state.last_status:
            await self.writer.patch_status(self.ref.namespace, self.ref.name, status)
            self.state.last_status = status
