"""kopf handlers: one evaluation daemon per policy and the finalizer that restores a
deleted policy's targets, both reading the watch-backed ``deployment_cache``. Thin: the
work is in ``cycle``, ``decide`` and ``actuator``."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import kopf

from gpuplane.downscaler.actuator import Actuator
from gpuplane.downscaler.cycle import PolicyEvaluator, utcnow
from gpuplane.downscaler.decide import Decision, Target, decide_on_delete
from gpuplane.downscaler.deployment_cache import DeploymentCache, OnChange
from gpuplane.downscaler.kube_api import KubeRequests
from gpuplane.downscaler.ledger import ledger_value
from gpuplane.downscaler.metrics import VERDICTS, OperatorMetrics
from gpuplane.downscaler.policy import (
    PolicyError,
    dry_run_of,
    parse_policy,
    prometheus_allowed,
    selector_matches,
)
from gpuplane.downscaler.prometheus import PrometheusClient
from gpuplane.downscaler.resource import GROUP, PLURAL, VERSION, policy_ref
from gpuplane.downscaler.snapshot import DeploymentSnapshot
from gpuplane.downscaler.status import PolicyState, invalid_policy_status
from gpuplane.downscaler.wake import WakeTracker
from gpuplane.shared.quoting import quoted

log = logging.getLogger(__name__)
POLICY_ERROR_RETRY_SECONDS = 30.0
# What a spec that passed the CRD schema can still raise in parse_policy: it checks every
# field's type itself, so only PolicyError (the fuzz targets hold it to that). It becomes
# Ready=False with the message, never a crash loop of the daemon.
POLICY_ERRORS = (PolicyError,)


class WakeRequests:
    """One event per namespace, shared by the Deployment watch (sets) and the policy
    daemons (wait, then clear)."""

    def __init__(self) -> None:
        self._events: dict[str, asyncio.Event] = {}

    def __call__(self, namespace: str) -> asyncio.Event:
        return self._events.setdefault(namespace, asyncio.Event())


@dataclass
class OperatorContext:
    """Shared by every handler (kopf's memo)."""

    api: KubeRequests
    actuator: Actuator
    cache: DeploymentCache
    metrics: OperatorMetrics
    default_prometheus_url: str
    wakes: WakeTracker
    clients: dict[str, PrometheusClient] = field(default_factory=dict)
    # Per namespace: set when a ScaledDown Deployment there gets a wake request, so its
    # policies evaluate now instead of at their next interval.
    requested: WakeRequests = field(default_factory=WakeRequests)
    # Prometheus URLs a policy may name besides the default (--allow-prometheus-url): a
    # policy author must not make the operator fetch any URL it can reach.
    allowed_prometheus: frozenset[str] = frozenset()

    def prometheus(self, url: str | None) -> PrometheusClient:
        """The client for a policy's Prometheus; PolicyError for a URL not allowed."""
        key = url or self.default_prometheus_url
        if not prometheus_allowed(key, self.default_prometheus_url, self.allowed_prometheus):
            raise PolicyError(
                f"spec.prometheus.url {quoted(key)} is not a Prometheus this operator may "
                "query (its --prometheus-url or an --allow-prometheus-url)"
            )
        if key not in self.clients:
            self.clients[key] = PrometheusClient(key)
        return self.clients[key]


def _context(memo: Any) -> OperatorContext:
    context = memo.context
    assert isinstance(context, OperatorContext)  # noqa: S101 - set by main before kopf runs
    return context


def wake_watch(
    wakes: WakeTracker,
    metrics: OperatorMetrics,
    requested: Callable[[str], asyncio.Event] | None = None,
) -> OnChange:
    """The Deployment cache's callback: a wake request on a ScaledDown Deployment makes
    its namespace's policies evaluate at once (``requested``); a wake's clock stops the
    moment the watch shows every replica ready. Only a woken or requested Deployment
    costs more than a dict lookup."""

    def on_change(item: DeploymentSnapshot | None, namespace: str, name: str) -> None:
        if (
            requested is not None
            and item is not None
            and item.wake_requested is not None
            and item.recorded is not None
        ):
            requested(namespace).set()
        if not wakes.pending(namespace, name):
            return
        if item is None:
            wakes.forget(namespace, name)
            return
        latency = wakes.seen(item, time.monotonic())
        if latency is not None:
            metrics.wake_seconds.observe(latency)

    return on_change


def _selected(
    cache: DeploymentCache, namespace: str, spec: dict[str, Any]
) -> list[DeploymentSnapshot]:
    policy = parse_policy(spec)
    return [item for item in cache.in_namespace(namespace) if selector_matches(policy, item.labels)]


@kopf.daemon(GROUP, VERSION, PLURAL, cancellation_timeout=10.0)  # type: ignore[arg-type]
async def evaluate_policy(
    *,
    spec: kopf.Spec,
    status: kopf.Status,
    name: str,
    namespace: str,
    uid: str,
    stopped: kopf.DaemonStopped,
    memo: kopf.Memo,
    **_: Any,
) -> None:
    context = _context(memo)
    await context.cache.synced.wait()  # an empty cache would read as "no targets"
    state = PolicyState.from_status(dict(status))
    evaluator = PolicyEvaluator(
        policy_ref(namespace, name, uid),
        context.api,
        context.actuator,
        context.metrics,
        state,
        wakes=context.wakes,
    )
    while not stopped:
        try:
            policy = parse_policy(dict(spec))
            prometheus = context.prometheus(policy.prometheus_url)
        except POLICY_ERRORS as error:
            invalid = invalid_policy_status(f"{type(error).__name__}: {error}", utcnow())
            if _conditions_differ(invalid, state.last_status):
                log.warning("policy %s/%s is invalid: %s", namespace, name, error)
                await context.api.patch_status(namespace, name, invalid)
                state.last_status = invalid
            await stopped.wait(POLICY_ERROR_RETRY_SECONDS)
            continue
        targets = [
            item
            for item in context.cache.in_namespace(namespace)
            if selector_matches(policy, item.labels)
        ]
        await evaluator.cycle(policy, prometheus, targets)
        await _pause(stopped, context.requested(namespace), policy.interval.total_seconds())


async def _pause(stopped: kopf.DaemonStopped, requested: asyncio.Event, seconds: float) -> None:
    """Until the next cycle: the interval, or less when a wake is requested."""
    waits = {
        asyncio.ensure_future(stopped.wait(seconds)),
        asyncio.ensure_future(requested.wait()),
    }
    _, pending = await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
    for waiting in pending:
        waiting.cancel()
    # Every policy of the namespace looks: the one selecting the Deployment acts, the
    # others find nothing to do. Cleared after the pause, so a request during the cycle
    # is not lost.
    requested.clear()


def _conditions_differ(new: dict[str, Any], old: dict[str, Any] | None) -> bool:
    """Compared without the transition time, which is the moment of each attempt."""

    def bare(status: dict[str, Any] | None) -> list[dict[str, Any]]:
        return [
            {key: value for key, value in condition.items() if key != "lastTransitionTime"}
            for condition in (status or {}).get("conditions") or []
        ]

    return bare(new) != bare(old)


@kopf.on.delete(GROUP, VERSION, PLURAL)  # type: ignore[arg-type]
async def restore_on_delete(
    *,
    spec: kopf.Spec,
    status: kopf.Status,
    name: str,
    namespace: str,
    uid: str,
    memo: kopf.Memo,
    **_: Any,
) -> None:
    """Before the policy goes, every target it scaled down comes back (the same
    conditional write as a cycle's restore, through the same actuator)."""
    context = _context(memo)
    await context.cache.synced.wait()
    state = PolicyState.from_status(dict(status))
    try:
        targets = _selected(context.cache, namespace, dict(spec))
    except POLICY_ERRORS:
        targets = context.cache.in_namespace(namespace)
    if dry_run_of(dict(spec)):
        targets = []

    def judge(deployment: DeploymentSnapshot) -> Decision:
        recorded = ledger_value(deployment.recorded, state.status_ledger.get(deployment.name))
        target = Target(deployment.name, deployment.replicas, deployment.created, recorded)
        return decide_on_delete(target, name)

    planned = [(target, judge(target)) for target in targets]
    planned = [(target, decision) for target, decision in planned if decision.action is not None]
    outcomes = await context.actuator.apply(planned, judge)
    for outcome in outcomes:
        if outcome.written and outcome.decision.cause is not None:
            context.metrics.restores.labels(outcome.decision.cause.value).inc()
    failed = [outcome for outcome in outcomes if outcome.error is not None]
    await context.actuator.announce(outcomes, policy_ref(namespace, name, uid), utcnow())
    if failed:
        # kopf retries the handler; the finalizer holds the policy until every target is back.
        raise kopf.TemporaryError(f"{len(failed)} target(s) not restored yet", delay=5)
    # The policy is gone: so are its series (a blind-downscaler alert must not linger).
    metrics = context.metrics
    for gauge in (metrics.scaled_down, metrics.gpus_reclaimed, metrics.metrics_available):
        with contextlib.suppress(KeyError):
            gauge.remove(namespace, name)
    for verdict in VERDICTS:
        with contextlib.suppress(KeyError):
            metrics.targets.remove(namespace, name, verdict)


@kopf.on.startup()
async def configure(settings: kopf.OperatorSettings, **_: Any) -> None:
    # Progress and finalizer bookkeeping stays in annotations; status is ours alone.
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix="gpuplane.io")
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix="gpuplane.io", key="last-handled-configuration"
    )
    settings.persistence.finalizer = "gpuplane.io/restore-targets"
    settings.posting.enabled = False  # our own events carry the inputs
    settings.watching.server_timeout = 300


@kopf.on.login()
def login(**kwargs: Any) -> kopf.ConnectionInfo | None:
    return kopf.login_with_service_account(**kwargs) or kopf.login_with_kubeconfig(**kwargs)
