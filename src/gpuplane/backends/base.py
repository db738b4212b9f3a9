"""The contract every backend keeps: ``up``, ``down``, ``status``, ``kubeconfig``."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from gpuplane.topology import Platform


@dataclass(frozen=True)
class NodeStatus:
    name: str
    role: str
    ready: bool
    taints: tuple[str, ...]
    gpus_allocatable: int
    simulated: bool


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
