"""kopf handlers: a watch-backed Deployment index, one evaluation daemon per policy,
and the finalizer that restores a deleted policy's targets. Thin: the work is in
``cycle`` and ``decide``."""

from __future__ import annotations

import contextlib
import logging
import time
from dataclasses import dataclass, field
from typing import Any

import kopf

from gpuplane.downscaler.cycle import (
    PolicyEvaluator,
    PolicyRef,
    PolicyState,
    deployment_ref,
    utcnow,
)
from gpuplane.downscaler.kubeio import GROUP, PLURAL, VERSION, KubeWriter, timestamp
from gpuplane.downscaler.ledger import ledger_value
from gpuplane.downscaler.metrics import OperatorMetrics
from gpuplane.downscaler.policy import PolicyError, parse_policy, selector_matches
from gpuplane.downscaler.prometheus import PrometheusClient
from gpuplane.downscaler.snapshot import DeploymentSnapshot, snapshot
from gpuplane.downscaler.wake import WakeTracker

log = logging.getLogger(__name__)
POLICY_ERROR_RETRY_SECONDS = 30.0


@dataclass
class OperatorContext:
    """Shared by every handler (kopf's memo)."""

    writer: KubeWriter
    metrics: OperatorMetrics
    default_prometheus_url: str
    clients: dict[str, PrometheusClient] = field(default_factory=dict)
    wakes: WakeTracker = field(default_factory=WakeTracker)

    def prometheus(self, url: str | None) -> PrometheusClient:
        key = url or self.default_prometheus_url
        if key not in self.clients:
            self.clients[key] = PrometheusClient(key)
        return self.clients[key]


def _context(memo: Any) -> OperatorContext:
    context = memo.context
    assert isinstance(context, OperatorContext)  # noqa: S101 - set by main before kopf runs
    return context


@kopf.index("apps", "v1", "deployments")  # type: ignore[arg-type]
async def deployments_by_namespace(
    body: kopf.Body, namespace: str, **_: Any
) -> dict[str, DeploymentSnapshot]:
    return {namespace: snapshot(dict(body))}


@kopf.on.event("apps", "v1", "deployments")
async def wake_completed(
    *, body: kopf.Body, type: str, namespace: str | None, name: str, memo: Any, **_: Any
) -> None:
    """Stop a wake's clock the moment the watch shows every replica ready (an event
    handler keeps no state on the object: no annotation is written). Every Deployment
    event of the cluster comes here: only a woken one is parsed."""
    wakes = _context(memo).wakes
    if not wakes.pending(namespace or "", name):
        return
    if type == "DELETED":
        wakes.forget(namespace or "", name)
        return
    latency = wakes.seen(snapshot(dict(body)), time.monotonic())
    if latency is not None:
        _context(memo).metrics.wake_seconds.observe(latency)


def _selected(index: Any, namespace: str, spec: dict[str, Any]) -> list[DeploymentSnapshot]:
    policy = parse_policy(spec)
    return [item for item in index.get(namespace, []) if selector_matches(policy, item.labels)]


@kopf.daemon(GROUP, VERSION, PLURAL, cancellation_timeout=10.0)  # type: ignore[arg-type]
async def evaluate_policy(
    *,
    spec: kopf.Spec,
    status: kopf.Status,
    name: str,
    namespace: str,
    uid: str,
    stopped: kopf.DaemonStopped,
    deployments_by_namespace: kopf.Index[str, DeploymentSnapshot],
    memo: kopf.Memo,
    **_: Any,
) -> None:
    context = _context(memo)
    ref = PolicyRef(namespace, name, uid)
    evaluator = PolicyEvaluator(
        ref,
        context.writer,
        context.metrics,
        PolicyState.from_status(dict(status)),
        wakes=context.wakes,
    )
    while not stopped:
        try:
            policy = parse_policy(dict(spec))
        except (PolicyError, KeyError, ValueError) as error:
            now = utcnow()
            await context.writer.patch_status(
                namespace,
                name,
                {
                    "conditions": [
                        {
                            "type": "Ready",
                            "status": "False",
                            "reason": "InvalidPolicy",
                            "message": str(error),
                            "lastTransitionTime": timestamp(now),
                        }
                    ]
                },
            )
            await stopped.wait(POLICY_ERROR_RETRY_SECONDS)
            continue
        targets = [
            item
            for item in deployments_by_namespace.get(namespace, [])
            if selector_matches(policy, item.labels)
        ]
        await evaluator.cycle(policy, context.prometheus(policy.prometheus_url), targets)
        await stopped.wait(policy.interval.total_seconds())


@kopf.on.delete(GROUP, VERSION, PLURAL)  # type: ignore[arg-type]
async def restore_on_delete(
    *,
    spec: kopf.Spec,
    status: kopf.Status,
    name: str,
    namespace: str,
    uid: str,
    deployments_by_namespace: kopf.Index[str, DeploymentSnapshot],
    memo: kopf.Memo,
    **_: Any,
) -> None:
    """Before the policy goes, every target it scaled down comes back."""
    context = _context(memo)
    state = PolicyState.from_status(dict(status))
    ref = PolicyRef(namespace, name, uid)
    try:
        targets = _selected(deployments_by_namespace, namespace, dict(spec))
    except (PolicyError, KeyError, ValueError):
        targets = list(deployments_by_namespace.get(namespace, []))
    dry_run = bool(spec.get("dryRun", False))
    for target in targets:
        recorded = ledger_value(target.recorded, state.status_ledger.get(target.name))
        if recorded is None or dry_run:
            continue
        if target.replicas == 0:
            await context.writer.scale(namespace, target.name, recorded)
            context.metrics.restores.labels("policy-deleted").inc()
        await context.writer.write_ledger(namespace, target.name, None)
        message = (
            f"Restore {namespace}/{target.name}: policy {name} deleted; "
            f"restored {recorded} replica(s)"
        )
        now = utcnow()
        await context.writer.event(deployment_ref(target), "Restore", message, now)
        await context.writer.event(ref.involved(), "Restore", message, now)
        log.info("%s", message)
    # The policy is gone: so are its series (a blind-downscaler alert must not linger).
    metrics = context.metrics
    for gauge in (metrics.scaled_down, metrics.gpus_reclaimed, metrics.metrics_available):
        with contextlib.suppress(KeyError):
            gauge.remove(namespace, name)


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
