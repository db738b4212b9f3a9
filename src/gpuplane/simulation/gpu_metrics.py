"""DCGM-exporter-compatible GPU series for the local backend's simulated GPUs (pure).

Each GPU of each gpu node gets the series dcgm-exporter would expose, with its labels
(``gpu``, ``UUID``, ``modelName``, ``Hostname``, and ``namespace``/``pod``/``container``
when a pod holds it), plus ``simulated="true"``, which no real exporter sets. Values
follow the traffic of the Deployment whose pod holds the GPU, so dashboards and the
downscaler's GPU signal behave as on a real cluster. Simulated: the local backend says so
in ``gpuplane status``, and ``gpuplane report`` on every panel drawn from these.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from gpuplane.gpu_exporter.exposition import METRICS as DCGM_METRICS

SIMULATED = (
    "DCGM_FI_DEV_GPU_UTIL", "DCGM_FI_DEV_FB_USED", "DCGM_FI_DEV_FB_FREE",
    "DCGM_FI_DEV_GPU_TEMP", "DCGM_FI_DEV_POWER_USAGE",
)  # fmt: skip
# The names, types and help of the real exporter, for the fields the simulator models.
METRICS = tuple(metric for metric in DCGM_METRICS if metric[0] in SIMULATED)


@dataclass(frozen=True)
class GpuNode:
    name: str
    gpus: int
    model: str
    memory_mib: int


@dataclass(frozen=True)
class GpuHolder:
    namespace: str
    pod: str
    container: str
    node: str
    gpus: int
    deployment: str | None  # the owning Deployment, when there is one


def deployment_of(replica_set: str | None) -> str | None:
    """A ReplicaSet named <deployment>-<hash> owns Deployment pods."""
    if replica_set is None or "-" not in replica_set:
        return None
    return replica_set.rsplit("-", 1)[0]


def gpu_uuid(node: str, index: int) -> str:
    return f"GPU-{uuid.uuid5(uuid.NAMESPACE_DNS, f'{node}.gpu{index}.gpuplane.sim')}"


def _reading(rps: float | None, memory: int) -> dict[str, float]:
    if rps is None:  # no pod holds it
        util, used = 0.0, 0.0
    elif rps <= 0:  # held, idle: the model stays loaded in memory
        util, used = 1.0, memory * 0.3
    else:
        util = min(95.0, 20.0 + 15.0 * rps)
        used = memory * (0.3 + 0.5 * util / 100)
    return {
        "DCGM_FI_DEV_GPU_UTIL": round(util),
        "DCGM_FI_DEV_FB_USED": round(used),
        "DCGM_FI_DEV_FB_FREE": round(memory - used),
        "DCGM_FI_DEV_GPU_TEMP": round(32 + util * 0.45),
        "DCGM_FI_DEV_POWER_USAGE": round(25 + util * 4.0, 1),
    }


def dcgm_exposition(
    nodes: list[GpuNode], holders: list[GpuHolder], rps: dict[tuple[str, str], float]
) -> str:
    """Prometheus text of every simulated GPU; GPUs go to holders in pod-name order."""
    samples: dict[str, list[str]] = {name: [] for name, _, _ in METRICS}
    for node in sorted(nodes, key=lambda n: n.name):
        slots: list[GpuHolder | None] = []
        for owner in sorted((h for h in holders if h.node == node.name), key=lambda h: h.pod):
            slots += [owner] * owner.gpus
        slots = (slots + [None] * node.gpus)[: node.gpus]
        for index, holder in enumerate(slots):
            labels = {
                "gpu": str(index),
                "UUID": gpu_uuid(node.name, index),
                "modelName": node.model.replace("-", " "),
                "Hostname": node.name,
                "namespace": holder.namespace if holder else "",
                "pod": holder.pod if holder else "",
                "container": holder.container if holder else "",
                # Whatever draws or alerts on these can tell them from a real exporter's.
                "simulated": "true",
            }
            rate = None
            if holder is not None:
                key = (holder.namespace, holder.deployment or "")
                rate = rps.get(key, 0.0)
            text = ",".join(f'{key}="{value}"' for key, value in labels.items())
            for name, value in _reading(rate, node.memory_mib).items():
                samples[name].append(f"{name}{{{text}}} {value}")
    lines = []
    for name, kind, help_text in METRICS:
        lines += [f"# HELP {name} {help_text} (simulated)", f"# TYPE {name} {kind}", *samples[name]]
    return "\n".join(lines) + "\n"
