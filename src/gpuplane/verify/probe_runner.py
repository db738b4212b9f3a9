"""Run the scheduling probes in a temporary namespace and always clean it up."""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from dataclasses import replace
from typing import cast

from lightkube import Client
from lightkube.core.exceptions import ApiError
from lightkube.models.meta_v1 import ObjectMeta
from lightkube.resources.core_v1 import Event, Namespace, Pod

from gpuplane.verify.model import CheckResult, skipped
from gpuplane.verify.probe_outcome import PodObservation, decide
from gpuplane.verify.probes import Probe

NOT_FOUND = 404
NAMESPACE_PREFIX = "gpuplane-verify-"


def new_namespace_name() -> str:
    return NAMESPACE_PREFIX + secrets.token_hex(3)


def create_namespace(client: Client, name: str) -> None:
    labels = {
        "app.kubernetes.io/managed-by": "gpuplane-verify",
        # The probes are "restricted" pods; enforcing it proves they stay so.
        "pod-security.kubernetes.io/enforce": "restricted",
    }
    client.create(Namespace(metadata=ObjectMeta(name=name, labels=labels)))


def observe(client: Client, namespace: str) -> dict[str, PodObservation]:
    """Where each probe pod is bound and its latest FailedScheduling message."""
    failures: dict[str, tuple[str, str]] = {}
    for event in client.list(Event, namespace=namespace, fields={"reason": "FailedScheduling"}):
        name = event.involvedObject.name
        stamp = str(event.lastTimestamp or event.eventTime or "")
        if name and event.message and (name not in failures or stamp >= failures[name][0]):
            failures[name] = (stamp, event.message)
    seen = {}
    for pod in client.list(Pod, namespace=namespace):
        name = pod.metadata.name if pod.metadata else None
        if name is None:
            continue
        node = pod.spec.nodeName if pod.spec else None
        seen[name] = PodObservation(node=node, scheduling_failure=failures.get(name, ("", None))[1])
    return seen


def run_probes(
    client: Client,
    namespace: str,
    probes: list[Probe],
    *,
    timeout: float = 60.0,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> list[CheckResult]:
    """Create every probe's pods at once, then poll until each probe is decided."""
    results: dict[str, CheckResult] = {
        probe.id: skipped(probe.id, probe.description, probe.skip_reason)
        for probe in probes
        if probe.skip_reason
    }
    active = [probe for probe in probes if not probe.skip_reason]
    for probe in active:
        for manifest in probe.pods:
            client.create(cast(Pod, Pod.from_dict(manifest)), namespace=namespace)
    start = clock()
    while True:
        waited = clock() - start
        final = waited >= timeout
        seen = observe(client, namespace)
        for probe in active:
            if probe.id not in results:
                result = decide(probe, seen, final=final, waited=waited)
                if result is not None:
                    results[probe.id] = _timed(result, waited)
        if len(results) == len(probes):
            return [results[probe.id] for probe in probes]
        sleep(0.2)


def release_probe_pods(
    client: Client,
    namespace: str,
    *,
    timeout: float = 60.0,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> bool:
    """Delete the probes' pods and wait until they are gone, so the GPU a probe held is
    free for the smoke test (on a real node the kubelet must stop the containers first).
    False if some were still there at ``timeout``."""
    for pod in client.list(Pod, namespace=namespace):
        if pod.metadata and pod.metadata.name:
            client.delete(Pod, pod.metadata.name, namespace=namespace, grace_period=0)
    deadline = clock() + timeout
    while list(client.list(Pod, namespace=namespace)):
        if clock() > deadline:
            return False
        sleep(0.2)
    return True


def _timed(result: CheckResult, seconds: float) -> CheckResult:
    return replace(result, duration_seconds=round(seconds, 2))


def delete_namespace(
    client: Client,
    name: str,
    *,
    timeout: float = 60.0,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> bool:
    """Delete the probe namespace and wait until it is gone; False if it lingers."""
    try:
        for pod in client.list(Pod, namespace=name):
            if pod.metadata and pod.metadata.name:
                client.delete(Pod, pod.metadata.name, namespace=name, grace_period=0)
        client.delete(Namespace, name)
    except ApiError as error:
        if error.status.code != NOT_FOUND:
            raise
    deadline = clock() + timeout
    while clock() < deadline:
        try:
            client.get(Namespace, name)
        except ApiError as error:
            if error.status.code == NOT_FOUND:
                return True
            raise
        sleep(0.2)
    return False
