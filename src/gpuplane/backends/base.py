"""The contract every backend keeps: ``up``, ``down``, ``status``, ``kubeconfig``."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from gpuplane.kube.nodes import read_node
from gpuplane.topology import Platform


@dataclass(frozen=True)
class NodeStatus:
    name: str
    role: str
    ready: bool
    taints: tuple[str, ...]
    gpus_allocatable: int
    simulated: bool
    # "kwok" for a simulated node, else the container runtime the kubelet reports.
    runtime: str

    @classmethod
    def of(cls, node: dict[str, Any]) -> NodeStatus:
        """A status row of one Node object (the API's dict shape)."""
        view = read_node(node)
        return cls(
            name=view.name,
            role=view.role,
            ready=view.ready,
            taints=view.taints,
            gpus_allocatable=view.gpus_allocatable,
            simulated=view.simulated,
            runtime=view.runtime,
        )


@dataclass(frozen=True)
class ComponentStatus:
    name: str
    running: bool
    detail: str
    simulated: bool = False


@dataclass(frozen=True)
class ClusterStatus:
    name: str
    backend: str
    running: bool
    kubeconfig: Path | None
    kubernetes_version: str | None
    nodes: tuple[NodeStatus, ...] = ()
    components: tuple[ComponentStatus, ...] = ()
    simulated: tuple[str, ...] = field(default_factory=tuple)


@dataclass(frozen=True)
class UpResult:
    """What ``up`` did: ``changes`` is empty when the cluster already matched."""

    kubeconfig: Path
    created: bool
    changes: tuple[str, ...]


class Reporter(Protocol):
    """Where long operations say what they are doing (the CLI renders it)."""

    def step(self, message: str) -> None: ...

    def progress(self, label: str, done: int, total: int) -> None: ...


class ClusterBackend(Protocol):
    def up(self, platform: Platform, reporter: Reporter) -> UpResult: ...

    def down(self, platform: Platform, reporter: Reporter) -> bool: ...

    def status(self, platform: Platform) -> ClusterStatus: ...

    def kubeconfig(self, platform: Platform) -> Path: ...

    def prometheus_url(self, platform: Platform) -> str | None:
        """The Prometheus the backend runs for the cluster, if it runs one now."""
        ...
