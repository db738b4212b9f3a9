"""The contract every backend keeps: ``preflight``, ``up``, ``down``, ``status``,
``kubeconfig``; and the optional capabilities a backend may have (``images()``,
``services()``), asked for once by the caller: None means this backend has none.

The CLI never branches on a backend's kind; it asks the backend what it can do."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from gpuplane.doctor import DoctorCheck, Level
from gpuplane.errors import PrerequisiteError
from gpuplane.kube.nodes import read_node
from gpuplane.toolchain.images import DEFAULT_SERVICES, BuiltImage
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


@dataclass(frozen=True)
class HostReport:
    """What a backend needs of this host for one platform: the checks, what they are for
    (``target``) and what to do instead when they fail (``instead``)."""

    target: str
    checks: tuple[DoctorCheck, ...]
    instead: str

    @property
    def failed(self) -> tuple[DoctorCheck, ...]:
        return tuple(check for check in self.checks if check.level is Level.FAIL)

    def require(self) -> None:
        """PrerequisiteError naming every failed check, before anything is created."""
        if self.failed:
            reasons = "; ".join(
                f"{c.id}: {c.summary}: {c.cause} (fix: {c.fix})" for c in self.failed
            )
            raise PrerequisiteError(
                f"{self.target} cannot run on this host: {reasons}; see gpuplane doctor, "
                f"or {self.instead}"
            )


@dataclass(frozen=True)
class RuntimeChoice:
    """What a node runs on, as the backend resolved it: ``declared`` is platform.yaml's
    runtime (``auto`` included), ``runtime`` what it became, ``reason`` why."""

    node: str
    declared: str
    runtime: str
    reason: str


@dataclass(frozen=True)
class ResolvedPlatform:
    """A platform as this host will run it: every ``auto`` runtime resolved, once."""

    platform: Platform
    choices: tuple[RuntimeChoice, ...] = ()

    def lines(self) -> list[str]:
        """For people: one line per node resolved from ``auto``; a reason every KWOK node
        shares (no root, say) is said once."""
        autos = [choice for choice in self.choices if choice.declared == "auto"]
        kwok_reasons = {choice.reason for choice in autos if choice.runtime == "kwok"}
        if autos and len(kwok_reasons) == 1 and all(c.runtime == "kwok" for c in autos):
            names = ", ".join(choice.node for choice in autos)
            return [f"runtime auto -> kwok for {names}: {kwok_reasons.pop()}"]
        return [f"runtime auto -> {c.runtime} for {c.node}: {c.reason}" for c in autos]


@dataclass(frozen=True)
class ActivatorAddress:
    url: str  # where clients send requests
    metrics_url: str  # /metrics and /healthz


class ImageStore(Protocol):
    """A backend whose nodes take offline images (the local backend's kubelet nodes)."""

    def build_images(self, platform: Platform, *, rebuild: bool = False) -> list[BuiltImage]:
        """The platform's own images (pause, toolbox, the device plugin's)."""
        ...

    def build_service_images(
        self,
        platform: Platform,
        python: Path,
        extra_path: tuple[Path, ...] = (),
        kinds: tuple[str, ...] = DEFAULT_SERVICES,
    ) -> list[BuiltImage]:
        """gpuplane's services assembled from ``python``'s environment."""
        ...

    def load_images(self, platform: Platform, images: list[BuiltImage]) -> dict[str, list[str]]:
        """Import ``images`` into every running node; what each took."""
        ...


class HostServices(Protocol):
    """A backend that runs the platform's services beside the cluster as host processes:
    Prometheus, the traffic simulator, the activator, gpu-exporter."""

    def prometheus_url(self, platform: Platform) -> str | None:
        """The Prometheus it runs for the cluster; None while it does not run."""
        ...

    def traffic_url(self, platform: Platform) -> str:
        """The traffic simulator's base URL; PrerequisiteError when it does not run."""
        ...

    def start_activator(
        self, platform: Platform, backends: list[dict[str, Any]], limits: dict[str, float]
    ) -> ActivatorAddress: ...

    def stop_activator(self, platform: Platform) -> None: ...

    def start_gpu_exporter(self, platform: Platform) -> list[str]:
        """gpu-exporter on the real gpu nodes; the scrape addresses."""
        ...


@dataclass(frozen=True)
class ApplicationStatus:
    """One Argo CD Application as ``gitops status`` shows it."""

    name: str
    sync: str
    health: str
    revision: str
    message: str
    # Why green is not the whole truth (its pods run on KWOK nodes), or why it is not
    # green (its source is unreachable offline); empty otherwise.
    note: str = ""

    @property
    def green(self) -> bool:
        return self.sync == "Synced" and self.health == "Healthy"


@dataclass(frozen=True)
class GitOpsStatus:
    repository: str | None
    components: tuple[ComponentStatus, ...]
    applications: tuple[ApplicationStatus, ...]


class GitOpsHost(Protocol):
    """A backend that runs Argo CD beside the cluster and syncs the platform from git."""

    def gitops_up(self, platform: Platform, repository: Path, reporter: Reporter) -> list[str]:
        """Argo CD up, syncing from ``repository``'s committed HEAD; what changed."""
        ...

    def gitops_status(self, platform: Platform) -> GitOpsStatus: ...

    def gitops_sync(self, platform: Platform, application: str | None) -> list[str]:
        """Refresh and sync ``application`` (default: the roots) now; the names."""
        ...

    def gitops_down(self, platform: Platform, reporter: Reporter) -> list[str]: ...


class AutoscaleHost(Protocol):
    """A backend that serves the custom metrics API (the Prometheus adapter) beside the
    cluster, so the HPA controller scales on Prometheus queries."""

    def autoscale_up(self, platform: Platform, reporter: Reporter) -> list[str]:
        """The adapter running and registered with the API server; what changed."""
        ...

    def autoscale_status(self, platform: Platform) -> tuple[ComponentStatus, ...]: ...

    def autoscale_down(self, platform: Platform, reporter: Reporter) -> list[str]: ...


class ClusterBackend(Protocol):
    name: str

    def resolve(self, platform: Platform) -> ResolvedPlatform:
        """Every ``runtime: auto`` decided from this host's facts, once: a running
        cluster keeps what its ``up`` decided. Every other method takes the result."""
        ...

    def preflight(self, platform: Platform) -> HostReport:
        """Every host check this backend needs for ``platform``; ``up`` requires them
        itself, so no caller can skip them."""
        ...

    def up(self, resolved: ResolvedPlatform, reporter: Reporter) -> UpResult:
        """Create or converge the cluster ``resolve`` gave (its choices are kept)."""
        ...

    def down(self, platform: Platform, reporter: Reporter) -> bool: ...

    def status(self, platform: Platform) -> ClusterStatus: ...

    def kubeconfig(self, platform: Platform) -> Path: ...

    def images(self) -> ImageStore | None:
        """Where offline images go, if this backend's nodes take them."""
        ...

    def services(self) -> HostServices | None:
        """The services it runs beside the cluster, if any."""
        ...

    def gitops(self) -> GitOpsHost | None:
        """Argo CD run by the backend itself, if it does that."""
        ...

    def autoscaling(self) -> AutoscaleHost | None:
        """The custom metrics API run by the backend itself, if it does that."""
        ...
