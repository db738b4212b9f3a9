"""One evaluation cycle of one policy: query, decide, act, report.

Per cycle: one query per signal plus one for wake (whatever the number of targets),
targets read from the watch cache, one conditional write per action (``actuator``) and a
status patch only when the status changed (``status``). The decisions are pure
(``decide``); this module only moves data between them.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import aiohttp

from gpuplane.downscaler.actuator import Actuator, Outcome
from gpuplane.downscaler.decide import (
    Action,
    Decision,
    Memory,
    Observation,
    RestoreCause,
    Target,
    TargetState,
    decide,
    not_written,
)
from gpuplane.downscaler.kube_api import Conflict, Gone, KubeApiError, KubeRequests
from gpuplane.downscaler.ledger import ledger_value
from gpuplane.downscaler.metrics import VERDICTS, OperatorMetrics
from gpuplane.downscaler.policy import Policy
from gpuplane.downscaler.prometheus import InstantQueries
from gpuplane.downscaler.readings import QueryResult, read_signal, read_wake
from gpuplane.downscaler.resource import ObjectRef
from gpuplane.downscaler.snapshot import DeploymentSnapshot
from gpuplane.downscaler.status import PolicyState, policy_status
from gpuplane.downscaler.wake import WakeTracker

# Restores whose time to ready is the wake latency (traffic is waiting for them).
WOKEN = (RestoreCause.WAKE, RestoreCause.REQUEST)
log = logging.getLogger(__name__)


def utcnow() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


@dataclass(frozen=True)
class Answers:
    """Prometheus' answers for one cycle: one per signal, and the wake query's."""

    signals: list[QueryResult]
    wake: QueryResult | None

    def every(self) -> list[QueryResult]:
        return [*self.signals, *([self.wake] if self.wake is not None else [])]

    def unreachable_error(self) -> str | None:
        down = [result for result in self.every() if result.unreachable]
        return (down[0].error or "unreachable") if down else None

    def query_errors(self, policy: Policy) -> list[str]:
        names = [signal.name for signal in policy.signals] + (["wake"] if self.wake else [])
        return sorted(
            {
                f"{name}: {result.error}"
                for name, result in zip(names, self.every(), strict=True)
                if result.error and not result.unreachable
            }
        )


class PolicyEvaluator:
    def __init__(
        self,
        ref: ObjectRef,
        api: KubeRequests,
        actuator: Actuator,
        metrics: OperatorMetrics,
        state: PolicyState,
        *,
        clock: Callable[[], datetime] = utcnow,
        monotonic: Callable[[], float] = time.monotonic,
        wakes: WakeTracker | None = None,
    ) -> None:
        self.ref = ref
        self.api = api
        self.actuator = actuator
        self.metrics = metrics
        self.state = state
        self.clock = clock
        self.monotonic = monotonic
        # Shared with the Deployment watch (handlers.wake_completed), which stops the clock.
        self.wakes = wakes or WakeTracker()

    async def _ask(self, policy: Policy, prometheus: InstantQueries) -> Answers:
        """One request per distinct (query, target label): a wake on the same series as a
        signal costs nothing more."""
        asked = [(signal.query, signal.target_label) for signal in policy.signals]
        if policy.wake is not None:
            asked.append((policy.wake.query, policy.wake.target_label))
        distinct = list(dict.fromkeys(asked))
        answers = await asyncio.gather(*(prometheus.query(*key) for key in distinct))
        by_key = dict(zip(distinct, answers, strict=True))
        self.metrics.queries.inc(len(distinct))
        self.metrics.query_errors.inc(sum(answer.error is not None for answer in answers))
        results = [by_key[key] for key in asked]
        wake = results.pop() if policy.wake is not None else None
        return Answers(results, wake)

    def _judge(
        self, policy: Policy, answers: Answers, now: datetime
    ) -> Callable[[DeploymentSnapshot], Decision]:
        """The pure decision for one Deployment, as the cycle and a conflict re-read use it."""

        def judge(deployment: DeploymentSnapshot) -> Decision:
            readings = tuple(
                read_signal(signal, result, deployment.name, now, policy.stale_after)
                for signal, result in zip(policy.signals, answers.signals, strict=True)
            )
            wake = (
                read_wake(policy.wake, answers.wake, deployment.name, now, policy.stale_after)
                if policy.wake is not None and answers.wake is not None
                else None
            )
            target = Target(
                name=deployment.name,
                replicas=deployment.replicas,
                created=deployment.created,
                recorded=ledger_value(
                    deployment.recorded, self.state.status_ledger.get(deployment.name)
                ),
            )
            seen = Observation(
                readings, wake, self.state.metrics_lost_since, deployment.wake_requested
            )
            memory = self.state.memory.get(deployment.name, Memory())
            return decide(target, seen, policy, memory, now)

        return judge

    async def cycle(
        self, policy: Policy, prometheus: InstantQueries, deployments: list[DeploymentSnapshot]
    ) -> list[Decision]:
        started = time.perf_counter()
        now = self.clock()
        answers = await self._ask(policy, prometheus)
        if answers.unreachable_error() is not None:
            self.state.metrics_lost_since = self.state.metrics_lost_since or now
        else:
            self.state.metrics_lost_since = None
        judge = self._judge(policy, answers, now)
        ordered = sorted(deployments, key=lambda deployment: deployment.name)
        decisions = {deployment.name: judge(deployment) for deployment in ordered}
        self.state.forget_missing(set(decisions))
        await self._act(policy, ordered, decisions, judge, now)
        self._count(policy, ordered, decisions)
        status = policy_status(
            list(decisions.items()),
            self.state,
            dry_run=policy.dry_run,
            query_errors=answers.query_errors(policy),
            unreachable_error=answers.unreachable_error(),
            now=now,
        )
        if status != self.state.last_status:
            try:
                await self.api.patch_status(self.ref.namespace, self.ref.name, status)
                self.state.last_status = status
            except (
                KubeApiError,
                Gone,
                Conflict,
                aiohttp.ClientError,
                TimeoutError,
                OSError,
            ) as error:
                # The status is a report: written again next cycle, the actions stand.
                log.warning("status of %s/%s not written: %s", self.ref.namespace,
                            self.ref.name, error)  # fmt: skip
        self.metrics.evaluation.observe(time.perf_counter() - started)
        return list(decisions.values())

    async def _act(
        self,
        policy: Policy,
        ordered: list[DeploymentSnapshot],
        decisions: dict[str, Decision],
        judge: Callable[[DeploymentSnapshot], Decision],
        now: datetime,
    ) -> None:
        planned = [(d, decisions[d.name]) for d in ordered if decisions[d.name].action is not None]
        for deployment, decision in planned:
            if decision.cause in WOKEN and not policy.dry_run:
                # The clock starts before the write: the watch may show the replicas
                # ready before this coroutine resumes.
                replicas = decision.restore_to or 0
                self.wakes.started(
                    deployment.namespace, deployment.name, replicas, self.monotonic()
                )
        started = time.perf_counter()
        outcomes = await self.actuator.apply(planned, judge, dry_run=policy.dry_run)
        if any(outcome.written for outcome in outcomes):
            self.metrics.actuation.observe(time.perf_counter() - started)
        for outcome in outcomes:
            decisions[outcome.deployment.name] = self._settle(outcome, now)
        for name, decision in decisions.items():
            self.state.memory[name] = decision.memory
        await self.actuator.announce(outcomes, self.ref, now)

    def _settle(self, outcome: Outcome, now: datetime) -> Decision:
        """What the status and the memory keep of one action's outcome."""
        name = outcome.deployment.name
        decision = outcome.decision
        if outcome.dry_run:
            self.state.acted(name, outcome.kind, decision, now)
        elif outcome.written:
            self.state.acted(name, outcome.kind, decision, now)
            if decision.action is Action.SCALE_DOWN:
                self.metrics.scale_downs.inc()
            elif decision.action is Action.RESTORE and decision.cause is not None:
                self.metrics.restores.labels(decision.cause.value).inc()
        elif outcome.gone or outcome.error is not None:
            self.wakes.forget(outcome.deployment.namespace, name)
            previous = self.state.memory.get(name, Memory())
            decision = not_written(decision, previous, outcome.error or "deleted")
        return decision

    def _count(
        self,
        policy: Policy,
        ordered: list[DeploymentSnapshot],
        decisions: dict[str, Decision],
    ) -> None:
        by_verdict = dict.fromkeys(VERDICTS, 0)
        for decision in decisions.values():
            self.metrics.decisions.labels(decision.verdict.value).inc()
            by_verdict[decision.verdict.value] += 1
        for verdict, count in by_verdict.items():
            self.metrics.targets.labels(self.ref.namespace, self.ref.name, verdict).set(count)
        scaled = [
            deployment
            for deployment in ordered
            if decisions[deployment.name].state is TargetState.SCALED_DOWN and not policy.dry_run
        ]
        self.metrics.scaled_down.labels(self.ref.namespace, self.ref.name).set(len(scaled))
        self.metrics.gpus_reclaimed.labels(self.ref.namespace, self.ref.name).set(
            sum(
                (self.state.status_ledger.get(d.name) or d.recorded or 0) * d.gpus_per_replica
                for d in scaled
            )
        )
        self.metrics.metrics_available.labels(self.ref.namespace, self.ref.name).set(
            0 if self.state.metrics_lost_since is not None else 1
        )
