"""Helpers to place pods on the sim cluster and watch where the real scheduler puts them."""

from __future__ import annotations

import time
from typing import cast

from lightkube import Client
from lightkube.resources.core_v1 import Event, Pod

from gpuplane.verify.probes import probe_pod

GPU_TOLERATION = {
    "key": "node-role.kubernetes.io/gpu",
    "operator": "Exists",
    "effect": "NoSchedule",
}
INFRA_TOLERATION = {
    "key": "node-role.kubernetes.io/infra",
    "operator": "Exists",
    "effect": "NoSchedule",
}


def pod(
    name: str,
    *,
    gpus: int = 0,
    tolerations: list[dict[str, str]] | None = None,
    node_selector: dict[str, str] | None = None,
) -> Pod:
    """The same Pod Security "restricted" probe pod that gpuplane verify places."""
    manifest = probe_pod(name, gpus=gpus, tolerations=tolerations, node_selector=node_selector)
    return cast(Pod, Pod.from_dict(manifest))


def wait_for_node(client: Client, name: str, ns: str, timeout: float = 30.0) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        live = client.get(Pod, name, namespace=ns)
        if live.spec and live.spec.nodeName:
            return live.spec.nodeName
        time.sleep(0.2)
    raise AssertionError(f"pod {ns}/{name} was not scheduled within {timeout}s")


def wait_for_scheduling_failure(client: Client, name: str, ns: str, timeout: float = 30.0) -> str:
    """The message of the pod's FailedScheduling event; fails if the pod gets a node."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        live = client.get(Pod, name, namespace=ns)
        assert not (live.spec and live.spec.nodeName), f"{name} was bound to {live.spec.nodeName}"
        events = client.list(
            Event,
            namespace=ns,
            fields={"involvedObject.name": name, "reason": "FailedScheduling"},
        )
        for event in events:
            if event.message:
                return event.message
        time.sleep(0.2)
    raise AssertionError(f"no FailedScheduling event for {ns}/{name} within {timeout}s")
