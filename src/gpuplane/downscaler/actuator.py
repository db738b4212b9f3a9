"""Carries out a cycle's actions (and the finalizer's): one conditional write per
Deployment, all of them concurrently within the client-side limits, then Events
aggregated per action kind.

One write per action: the ledger annotation and ``spec.replicas`` travel in one merge
patch guarded by the Deployment's resourceVersion. There is no state between two writes
to recover from: a crash leaves the Deployment either as it was or fully acted on. A
conflict (someone wrote the Deployment since the watch saw it) is re-read and decided
again on what is really there; it is never forced.
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

import aiohttp

from gpuplane.downscaler.decide import Action, Decision
from gpuplane.downscaler.kube_api import (
    Conflict,
    Gone,
    KubeApiError,
    KubeRequests,
    deployment_patch,
)
from gpuplane.downscaler.metrics import OperatorMetrics
from gpuplane.downscaler.resource import ObjectRef, deployment_ref
from gpuplane.downscaler.snapshot import DeploymentSnapshot, snapshot

log = logging.getLogger(__name__)
ATTEMPTS = 3
# Up to this many actions of one kind in a cycle, each Deployment gets its own Event;
# beyond it only the policy gets one summary (1,000 Events would double the requests).
EVENTS_PER_DEPLOYMENT_LIMIT = 10
NAMES_IN_SUMMARY = 20

Redecide = Callable[[DeploymentSnapshot], Decision]


@dataclass(frozen=True)
class Outcome:
    deployment: DeploymentSnapshot  # the version the final decision stands on
    decision: Decision  # as written, or as re-decided after a conflict
    written: bool
    error: str | None = None  # why an action was not written (the target still exists)
    kind: str = ""  # the Event reason: ScaleDown, Restore, Release, DryRunScaleDown...
    dry_run: bool = False  # decided and reported, never written (spec.dryRun)
    gone: bool = False  # the Deployment was deleted before the write: nothing to do


def write_for(decision: Decision, resource_version: str) -> dict[str, object] | None:
    if decision.action is Action.SCALE_DOWN:
        return deployment_patch(resource_version, replicas=0, ledger=decision.record)
    if decision.action is Action.RESTORE and decision.restore_to is not None:
        return deployment_patch(resource_version, replicas=decision.restore_to, ledger=None)
    if decision.action is Action.RELEASE:
        return deployment_patch(resource_version, replicas=None, ledger=None)
    return None


class Actuator:
    def __init__(self, api: KubeRequests, metrics: OperatorMetrics) -> None:
        self.api = api
        self.metrics = metrics

    async def apply(
        self,
        planned: list[tuple[DeploymentSnapshot, Decision]],
        redecide: Redecide,
        *,
        dry_run: bool = False,
    ) -> list[Outcome]:
        if dry_run:
            return [
                Outcome(deployment, decision, False, kind=f"DryRun{_kind(decision)}", dry_run=True)
                for deployment, decision in planned
            ]
        return list(
            await asyncio.gather(
                *(self._write(deployment, decision, redecide) for deployment, decision in planned)
            )
        )

    async def _write(
        self, deployment: DeploymentSnapshot, decision: Decision, redecide: Redecide
    ) -> Outcome:
        try:
            for _ in range(ATTEMPTS):
                patch = write_for(decision, deployment.resource_version)
                if patch is None:  # a re-read showed there is nothing to do any more
                    return Outcome(deployment, decision, False)
                try:
                    written = await self.api.patch_deployment(
                        deployment.namespace, deployment.name, patch
                    )
                    return Outcome(snapshot(written), decision, True, kind=_kind(decision))
                except Conflict:
                    self.metrics.write_conflicts.inc()
                    deployment = snapshot(
                        await self.api.get_deployment(deployment.namespace, deployment.name)
                    )
                    decision = redecide(deployment)
        except Gone:
            return Outcome(deployment, decision, False, gone=True)
        except (KubeApiError, aiohttp.ClientError, TimeoutError, OSError) as error:
            return self._failed(deployment, decision, error)
        self.metrics.write_errors.inc()
        return Outcome(deployment, decision, False, f"conflict {ATTEMPTS} times")

    def _failed(
        self, deployment: DeploymentSnapshot, decision: Decision, error: Exception
    ) -> Outcome:
        self.metrics.write_errors.inc()
        text = f"{type(error).__name__}: {error}"[:200]
        log.warning("%s %s/%s not written: %s", _kind(decision), deployment.namespace,
                    deployment.name, text)  # fmt: skip
        return Outcome(deployment, decision, False, text)

    async def announce(self, outcomes: list[Outcome], policy: ObjectRef, now: datetime) -> None:
        """One log line per action; Events per Deployment for a few, a summary for many."""
        by_kind: dict[str, list[Outcome]] = defaultdict(list)
        for outcome in outcomes:
            if outcome.kind:
                by_kind[outcome.kind].append(outcome)
                target = outcome.deployment
                log.info("%s %s/%s: %s", outcome.kind, target.namespace, target.name,
                         outcome.decision.detail)  # fmt: skip
        events = []
        for kind, done in by_kind.items():
            if len(done) <= EVENTS_PER_DEPLOYMENT_LIMIT:
                events += [
                    self.api.event(_ref(outcome.deployment), kind, _message(outcome), now)
                    for outcome in done
                ]
            events.append(self.api.event(policy, kind, _summary(kind, done), now))
        results = await asyncio.gather(*events, return_exceptions=True)
        for result in results:
            if isinstance(result, BaseException):
                # An Event is a courtesy: the action is written and in the status.
                log.warning("event not recorded: %s", result)


def _kind(decision: Decision) -> str:
    return decision.action.value if decision.action is not None else ""


def _ref(deployment: DeploymentSnapshot) -> ObjectRef:
    return deployment_ref(deployment.namespace, deployment.name, deployment.uid)


def _message(outcome: Outcome) -> str:
    target = outcome.deployment
    return f"{outcome.kind} {target.namespace}/{target.name}: {outcome.decision.detail}"


def _summary(kind: str, done: list[Outcome]) -> str:
    if len(done) == 1:
        return _message(done[0])
    names = sorted(outcome.deployment.name for outcome in done)
    shown = ", ".join(names[:NAMES_IN_SUMMARY])
    more = f" (+{len(names) - NAMES_IN_SUMMARY} more)" if len(names) > NAMES_IN_SUMMARY else ""
    return f"{kind} {len(done)} Deployment(s): {shown}{more}"
