"""Scheduling probes built from the topology (pure): which pods, and what must happen.

Each probe is one or more pods plus the expected outcome: bound to a node of a given
set, or left Pending with a FailedScheduling message containing a given reason. Pods
are Pod Security "restricted" and run the pause image, so they work on real clusters.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from gpuplane.kube.nodes import GPU_RESOURCE
from gpuplane.topology import ROLE_LABEL, Node, Platform, Role

PAUSE_IMAGE = "registry.k8s.io/pause:3.10"


class Expect(StrEnum):
    BOUND = "bound"
    PENDING = "pending"


@dataclass(frozen=True)
class Probe:
    id: str
    description: str
    pods: tuple[dict[str, Any], ...] = ()
    expect: Expect = Expect.BOUND
    allowed_nodes: frozenset[str] = frozenset()
    pending_reason: str = ""
    skip_reason: str = ""
    # Shown with the result: what made the outcome expected (e.g. the taint in the way).
    context: str = ""

    @property
    def pod_names(self) -> tuple[str, ...]:
        return tuple(pod["metadata"]["name"] for pod in self.pods)


def role_selector(nodes: tuple[Node, ...], role: Role) -> dict[str, str]:
    """Labels every node of the role declares (falls back to the bootstrap role label)."""
    common: dict[str, str] | None = None
    for node in nodes:
        labels = dict(node.labels)
        common = (
            labels if common is None else {k: v for k, v in common.items() if labels.get(k) == v}
        )
    return common or {ROLE_LABEL: role}


def role_tolerations(nodes: tuple[Node, ...]) -> list[dict[str, str]]:
    seen: dict[str, dict[str, str]] = {}
    for node in nodes:
        for taint in node.parsed_taints:
            toleration = {
                "key": taint.key,
                "operator": "Equal",
                "value": taint.value,
                "effect": taint.effect,
            }
            seen[str(taint)] = toleration
    return list(seen.values())


def probe_pod(
    name: str,
    *,
    gpus: int = 0,
    tolerations: list[dict[str, str]] | None = None,
    node_selector: dict[str, str] | None = None,
) -> dict[str, Any]:
    container: dict[str, Any] = {
        "name": "probe",
        "image": PAUSE_IMAGE,
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "capabilities": {"drop": ["ALL"]},
            "runAsNonRoot": True,
            "runAsUser": 65535,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "resources": {"requests": {"cpu": "10m", "memory": "16Mi"}, "limits": {"memory": "16Mi"}},
    }
    if gpus:
        container["resources"]["limits"][GPU_RESOURCE] = str(gpus)
    spec: dict[str, Any] = {
        "containers": [container],
        "automountServiceAccountToken": False,
        "terminationGracePeriodSeconds": 0,
        "securityContext": {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}},
    }
    if tolerations:
        spec["tolerations"] = tolerations
    if node_selector:
        spec["nodeSelector"] = node_selector
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": {"app.kubernetes.io/managed-by": "gpuplane-verify"}},
        "spec": spec,
    }


def _names(nodes: tuple[Node, ...]) -> frozenset[str]:
    return frozenset(node.name for node in nodes)


@dataclass(frozen=True)
class GpuUse:
    """Who holds GPUs right now: node -> GPUs requested by its running pods."""

    in_use: dict[str, int]
    holders: tuple[str, ...] = ()


def gpu_use(pods: list[dict[str, Any]]) -> GpuUse:
    """From the API's pods (dicts): GPUs held per node by pods that are not finished."""
    in_use: dict[str, int] = {}
    holders = []
    for pod in pods:
        node = pod.get("spec", {}).get("nodeName")
        if not node or pod.get("status", {}).get("phase") in ("Succeeded", "Failed"):
            continue
        gpus = 0
        for container in pod.get("spec", {}).get("containers", []):
            limits = (container.get("resources") or {}).get("limits") or {}
            gpus += int(str(limits.get(GPU_RESOURCE, 0)))
        if gpus:
            in_use[node] = in_use.get(node, 0) + gpus
            meta = pod.get("metadata", {})
            holders.append(f"{meta.get('namespace')}/{meta.get('name')}")
    return GpuUse(in_use, tuple(sorted(holders)))


def build_probes(platform: Platform, use: GpuUse | None = None) -> list[Probe]:
    app, infra, gpu = (platform.nodes_with_role(role) for role in ("app", "infra", "gpu"))
    probes: list[Probe] = []

    plain = "a pod without selector or toleration lands on an app node"
    probes.append(
        Probe("probe.plain-to-app", plain, (probe_pod("plain"),), allowed_nodes=_names(app))
        if app
        else Probe("probe.plain-to-app", plain, skip_reason="no app node declared")
    )

    infra_text = "an infra pod (toleration + selector) lands on an infra node"
    if infra:
        pod = probe_pod(
            "infra",
            tolerations=role_tolerations(infra),
            node_selector=role_selector(infra, "infra"),
        )
        probes.append(
            Probe("probe.infra-to-infra", infra_text, (pod,), allowed_nodes=_names(infra))
        )
    else:
        probes.append(
            Probe("probe.infra-to-infra", infra_text, skip_reason="no infra node declared")
        )

    probes.extend(_gpu_probes(gpu, use or GpuUse({})))

    spread_text = (
        "pods without selector or toleration never land on infra, gpu or control-plane nodes"
    )
    count = max(4, 2 * len(platform.spec.nodes))
    pods = tuple(probe_pod(f"spread-{index}") for index in range(count))
    probes.append(
        Probe("probe.untolerated-avoids-tainted", spread_text, pods, allowed_nodes=_names(app))
        if app
        else Probe(
            "probe.untolerated-avoids-tainted", spread_text, skip_reason="no app node declared"
        )
    )
    return probes


def _gpu_probes(gpu: tuple[Node, ...], use: GpuUse) -> list[Probe]:
    texts = {
        "probe.gpu-to-gpu": (
            "a GPU pod (toleration + selector + nvidia.com/gpu: 1) lands on a gpu node"
        ),
        "probe.gpu-without-toleration": (
            "a GPU pod without the toleration stays Pending on the gpu taint"
        ),
        "probe.too-many-gpus": "a pod asking more GPUs than any node has stays Pending",
    }
    if not gpu:
        return [
            Probe(check_id, text, skip_reason="no gpu node declared")
            for check_id, text in texts.items()
        ]
    selector = role_selector(gpu, "gpu")
    tolerations = role_tolerations(gpu)
    most = max(node.gpu_allocatable for node in gpu)
    taints = ", ".join(sorted({str(t) for node in gpu for t in node.parsed_taints}))
    free = max(node.gpu_allocatable - use.in_use.get(node.name, 0) for node in gpu)
    placement = (
        Probe(
            "probe.gpu-to-gpu",
            texts["probe.gpu-to-gpu"],
            (probe_pod("gpu", gpus=1, tolerations=tolerations, node_selector=selector),),
            allowed_nodes=_names(gpu),
        )
        if free >= 1
        # Every GPU is held: the probe cannot prove placement, and must not evict anyone.
        else Probe(
            "probe.gpu-to-gpu",
            texts["probe.gpu-to-gpu"],
            skip_reason=f"no free GPU on the gpu nodes (held by {', '.join(use.holders)})",
        )
    )
    return [
        placement,
        Probe(
            "probe.gpu-without-toleration",
            texts["probe.gpu-without-toleration"],
            (probe_pod("gpu-untolerated", gpus=1, node_selector=selector),),
            expect=Expect.PENDING,
            pending_reason="untolerated taint",
            context=f"untolerated taint(s) on the gpu nodes: {taints}",
        ),
        Probe(
            "probe.too-many-gpus",
            texts["probe.too-many-gpus"],
            (
                probe_pod(
                    "gpu-greedy", gpus=most + 1, tolerations=tolerations, node_selector=selector
                ),
            ),
            expect=Expect.PENDING,
            pending_reason=f"Insufficient {GPU_RESOURCE}",
            context=f"asked {most + 1} GPUs; the largest gpu node has {most}",
        ),
    ]
