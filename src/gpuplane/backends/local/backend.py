"""The local backend: the real upstream control plane on 127.0.0.1, KWOK nodes, no Docker.

``up`` = build/cached binaries -> kwokctl create (or start) -> register nodes with
bootstrap identity -> platform step (declared labels) -> wait Ready. Every step
converges, so a second ``up`` changes nothing and says so.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from lightkube import Client
from lightkube.resources.apps_v1 import Deployment
from lightkube.resources.core_v1 import Node as NodeResource

from gpuplane.backends.base import (
    ActivatorAddress,
    ApplicationStatus,
    AutoscaleHost,
    ClusterStatus,
    ComponentStatus,
    GitOpsHost,
    GitOpsStatus,
    HostReport,
    HostServices,
    ImageStore,
    NodeStatus,
    Reporter,
    ResolvedPlatform,
    RuntimeChoice,
    UpResult,
)
from gpuplane.backends.gpu_enablement import RUNTIME_CLASS_MANIFEST
from gpuplane.backends.local.activator_service import start_activator, stop_activator
from gpuplane.backends.local.autoscaling import PROCESS as ADAPTER_PROCESS
from gpuplane.backends.local.autoscaling import MetricsAdapter
from gpuplane.backends.local.binaries import LocalToolchain
from gpuplane.backends.local.etcd_tls import etcd_tls
from gpuplane.backends.local.gitops.argocd import REMOTE_ROOT_APPLICATION, ROOT_APPLICATION
from gpuplane.backends.local.gitops.in_cluster_downscaler import (
    DEPLOYMENT as OPERATOR_DEPLOYMENT,
)
from gpuplane.backends.local.gitops.in_cluster_downscaler import (
    NAMESPACE as OPERATOR_NAMESPACE,
)
from gpuplane.backends.local.gitops.in_cluster_downscaler import (
    GatewayPorts,
    api_server_port,
    downscaler_values,
    gateway_address,
    operator_status,
)
from gpuplane.backends.local.gitops.stack import GATEWAY as GITOPS_GATEWAY
from gpuplane.backends.local.gitops.stack import PROCESSES as GITOPS_PROCESSES
from gpuplane.backends.local.gitops.stack import GitOps
from gpuplane.backends.local.gpu_exporter_service import start_gpu_exporter
from gpuplane.backends.local.kubelet.fleet import KubeletFleet, needed_components
from gpuplane.backends.local.kwokctl import Kwokctl, kwokctl_configuration
from gpuplane.backends.local.processes import component_statuses, running_pids, stop_leftovers
from gpuplane.backends.local.registration import register_nodes, wait_ready, wait_registered
from gpuplane.backends.local.runtime_choice import (
    NO_FACTS_NEEDED,
    resolve_runtimes,
    resolved_platform,
)
from gpuplane.backends.local.runtime_facts import collect_host_facts
from gpuplane.backends.local.services import (
    POD_TARGETS,
    SERVICES,
    PodDiscovery,
    Services,
    free_port,
    running_prometheus_url,
)
from gpuplane.backends.local.simulated_parts import simulated_parts
from gpuplane.backends.local.state import LocalState
from gpuplane.backends.local.tokens import mint_token
from gpuplane.backends.platform_labels import apply_node_labels
from gpuplane.backends.state_root import default_state_root
from gpuplane.doctor.kubelet_host import kubelet_host_checks
from gpuplane.errors import PrerequisiteError
from gpuplane.kube import connect, get_raw, is_reachable, version_of, wait_reachable
from gpuplane.kube.apply import apply_files
from gpuplane.kube.files import user_kubeconfig, write_private
from gpuplane.kube.objects import deleted
from gpuplane.toolchain import (
    BuildProgress,
    component,
    repo_root,
)
from gpuplane.toolchain.images import DEFAULT_SERVICES, BuiltImage, build_service_image
from gpuplane.topology import Platform

DOWNSCALER_RBAC = "deploy/downscaler/rbac.yaml"
DOWNSCALER_NAMESPACE = "gpuplane-system"
DOWNSCALER_ACCOUNT = "gpuplane-downscaler"
PROMETHEUS_RBAC = "deploy/prometheus/rbac.yaml"
PROMETHEUS_ACCOUNT = "gpuplane-prometheus"


class LocalBackend:
    name = "local"

    def __init__(
        self,
        state_root: Path | None = None,
        cache: Path | None = None,
        *,
        run_services: bool = True,
    ) -> None:
        self._state_root = state_root or default_state_root()
        self._cache = cache
        # Prometheus, the traffic simulator and the downscaler beside the cluster; off on
        # hosts that only run the platform's nodes (the GPU machine has no Prometheus).
        self._services = run_services

    def resolve(self, platform: Platform) -> ResolvedPlatform:
        """``runtime: auto`` from this host's facts; a cluster that is up keeps what its
        ``up`` resolved (saved beside it), so a later verb never flips a node."""
        if not platform.auto_nodes:
            # Nothing to decide: every verb on such a platform reads no host facts.
            return ResolvedPlatform(platform, resolve_runtimes(platform, NO_FACTS_NEEDED))
        state = self._state(platform)
        choices = _saved_choices(state, platform) or resolve_runtimes(
            platform, collect_host_facts(platform, state.directory)
        )
        return ResolvedPlatform(resolved_platform(platform, choices), choices)

    def preflight(self, platform: Platform) -> HostReport:
        """KWOK nodes need nothing of the host; kubelet nodes need root, cgroups,
        overlayfs (and NVML on a gpu node)."""
        names = ", ".join(node.name for node in platform.kubelet_nodes)
        if not names:
            return HostReport("KWOK nodes", (), "")
        return HostReport(
            f"kubelet node {names!r}",
            tuple(kubelet_host_checks(platform)),
            "declare the node(s) runtime: kwok",
        )

    def images(self) -> ImageStore:
        return self

    def services(self) -> HostServices:
        return self

    def gitops(self) -> GitOpsHost:
        return self

    def autoscaling(self) -> AutoscaleHost:
        return self

    def _state(self, platform: Platform) -> LocalState:
        return LocalState(self._state_root, platform.name)

    def kubeconfig(self, platform: Platform) -> Path:
        return self._state(platform).kubeconfig

    def prometheus_url(self, platform: Platform) -> str | None:
        return running_prometheus_url(self._state(platform))

    def traffic_url(self, platform: Platform) -> str:
        """The traffic simulator's base URL; PrerequisiteError when it does not run."""
        services = Services(self._state(platform))
        ports = services.ports()
        if ports is None or not services.running("traffic"):
            raise PrerequisiteError(
                f"the traffic simulator of cluster {platform.name!r} is not running (gpuplane up)"
            )
        return ports.traffic_url

    def up(self, resolved: ResolvedPlatform, reporter: Reporter) -> UpResult:
        platform = resolved.platform
        state = self._state(platform)
        # Before anything is built or started: a host that cannot run the node says so.
        self.preflight(platform).require()
        if any(choice.declared == "auto" for choice in resolved.choices):
            save_choices(state, resolved.choices)
        KubeletFleet(platform, state).check_host()
        toolchain = LocalToolchain.of(platform, self._cache)
        pins = toolchain.pins

        def report(progress: BuildProgress) -> None:
            reporter.progress(
                "building " + ", ".join(progress.binaries), progress.compiled, progress.total
            )

        binaries = toolchain.built(needed_components(platform, pins), report)
        kwokctl = Kwokctl(binaries["kwokctl"], state)
        created = False
        changes: list[str] = []
        if not is_reachable(state.kubeconfig):
            etcd = etcd_tls(state.directory / "etcd-pki", free_port, datetime.now(UTC))
            kwokctl.write_config(
                kwokctl_configuration(binaries, pins.kubernetes, pins.etcd, state.pki, etcd)
            )
            if state.exists():
                reporter.step(f"starting the stopped local cluster {platform.name!r}")
                kwokctl.start()
                changes.append("control plane restarted")
            else:
                reporter.step(
                    f"starting etcd, kube-apiserver, kube-controller-manager, kube-scheduler "
                    f"and kwok {pins.kubernetes} on 127.0.0.1"
                )
                kwokctl.create()
                created = True
        state.kubeconfig.chmod(0o600)
        private_keys(state)
        wait_reachable(state.kubeconfig)
        client = connect(state.kubeconfig)
        reporter.step("registering nodes (taints, role, GPU capacity) and applying role labels")
        changes += register_nodes(client, platform)
        fleet = KubeletFleet(platform, state)
        if fleet.nodes:
            reporter.step("building the platform's images (offline OCI layouts; cached)")
            images = fleet.images(toolchain)
            changes += fleet.start(binaries, images, reporter)
            wait_registered(client, [node.name for node in platform.kubelet_nodes])
        labelled = apply_node_labels(client, platform)
        changes += [f"node {name} labelled" for name in labelled]
        reporter.step("waiting for nodes to be Ready")
        wait_ready(client, [node.name for node in platform.spec.nodes], timeout=120.0)
        changes += fleet.enable_gpus(client, pins, binaries, reporter)
        if platform.gpu_nodes and not fleet.has_gpu_node:
            # GPU workloads name RuntimeClass nvidia (apps/inference, the smoke test); the
            # API server refuses such pods without it. On KWOK gpu nodes it is inert.
            apply_files(client, [repo_root() / RUNTIME_CLASS_MANIFEST])
        if self._services:
            real = tuple(node.name for node in platform.kubelet_nodes)
            changes += self._start_services(state, client, reporter, real)
            changes += self._resume_operator_gateway(state, real)
        return UpResult(
            kubeconfig=state.kubeconfig,
            created=created,
            changes=() if created else tuple(changes),
        )

    def build_images(self, platform: Platform, *, rebuild: bool = False) -> list[BuiltImage]:
        """The platform's own images (pause, toolbox; the device plugin's with a kubelet
        gpu node), built offline into the cache when missing (or ``rebuild``)."""
        fleet = KubeletFleet(platform, self._state(platform))
        return fleet.images(LocalToolchain.of(platform, self._cache), rebuild=rebuild)

    def build_service_images(
        self,
        platform: Platform,
        python: Path,
        extra_path: tuple[Path, ...] = (),
        kinds: tuple[str, ...] = DEFAULT_SERVICES,
    ) -> list[BuiltImage]:
        """gpuplane's own services (inference, activator, gpu-exporter) from ``python``'s
        environment, into the cache."""
        cache = LocalToolchain.of(platform, self._cache).cache
        return [build_service_image(kind, cache / "images", python, extra_path) for kind in kinds]

    def load_images(self, platform: Platform, images: list[BuiltImage]) -> dict[str, list[str]]:
        """Import ``images`` into every running kubelet node; return what each took."""
        toolchain = LocalToolchain.of(platform, self._cache)
        binaries = toolchain.built(needed_components(platform, toolchain.pins))
        return KubeletFleet(platform, self._state(platform)).load_images(binaries, images)

    def start_activator(
        self, platform: Platform, backends: list[dict[str, Any]], limits: dict[str, float]
    ) -> ActivatorAddress:
        """The activator as a host process for ``backends`` (routes-file entries), on
        127.0.0.1, scraped by the cluster's Prometheus; replaces one already running."""
        state = self._state(platform)
        return start_activator(state, connect(state.kubeconfig), backends, limits)

    def stop_activator(self, platform: Platform) -> None:
        stop_activator(self._state(platform))

    def start_gpu_exporter(self, platform: Platform) -> list[str]:
        """gpu-exporter on the kubelet gpu nodes (its image loaded already), scraped by the
        cluster's Prometheus (its pod discovery); return the scrape addresses."""
        state = self._state(platform)
        nodes = [node.name for node in platform.kubelet_nodes if node.is_gpu]
        return start_gpu_exporter(connect(state.kubeconfig), nodes)

    def gitops_up(self, platform: Platform, repository: Path, reporter: Reporter) -> list[str]:
        """Argo CD (built on first use), redis and the loopback git server beside the
        running cluster; the root Applications from ``repository``'s HEAD."""
        state = self._require_up(platform)
        binaries = self._built(platform, ("argocd", "helm"), reporter)
        client = connect(state.kubeconfig)
        gitops = GitOps(state)
        changes: list[str] = []
        values = None
        operator_node = platform.kubelet_nodes[0].name if platform.kubelet_nodes else None
        if operator_node is not None:
            values, started = self._operator_in_cluster(state, client, operator_node)
            changes += ["pod-gateway started"] if started else []
        changes += gitops.up(
            client,
            binaries["argocd"],
            binaries["helm"],
            repository,
            reporter.step,
            downscaler=values,
        )
        if operator_node is not None and Services(state).hand_operator_to_cluster(operator_node):
            changes.append(
                f"host-process downscaler stopped: Argo CD's operator pod on {operator_node} "
                "acts instead"
            )
        return changes

    def _operator_in_cluster(
        self, state: LocalState, client: Client, node: str
    ) -> tuple[dict[str, Any], bool]:
        """The downscaler chart's values for its pod on kubelet node ``node``, with the pod
        gateway it reaches the API server and Prometheus through (started if needed)."""
        ports, started = self._start_gateway(state)
        found = client.get(NodeResource, node)
        taints = [t.to_dict() for t in ((found.spec.taints if found.spec else None) or [])]
        return downscaler_values(node, taints, gateway_address(), ports), started

    def _start_gateway(self, state: LocalState) -> tuple[GatewayPorts, bool]:
        prometheus = Services(state).ports()
        if prometheus is None:
            raise PrerequisiteError(f"the Prometheus of {state.name!r} is not running: gpuplane up")
        return GitOps(state).start_gateway(api_server_port(state.kubeconfig), prometheus.prometheus)

    def _resume_operator_gateway(self, state: LocalState, real_nodes: tuple[str, ...]) -> list[str]:
        """Where Argo CD's operator pod acts (the host process stays stopped), its gateway
        back after a restart, so it reaches the API server and Prometheus again."""
        node = Services(state).operator_in_cluster()
        if node is None or node not in real_nodes:
            return []
        _ports, started = self._start_gateway(state)
        return ["pod-gateway started"] if started else []

    def gitops_status(self, platform: Platform) -> GitOpsStatus:
        state = self._state(platform)
        gitops = GitOps(state)
        rows: tuple[ApplicationStatus, ...] = ()
        if is_reachable(state.kubeconfig) and gitops.is_up():
            rows = tuple(gitops.rows(connect(state.kubeconfig)))
        return GitOpsStatus(gitops.repository_url(), gitops.statuses(), rows)

    def gitops_sync(self, platform: Platform, application: str | None) -> list[str]:
        state = self._require_up(platform)
        gitops = GitOps(state)
        if not gitops.is_up():
            raise PrerequisiteError(
                f"gitops is not up on cluster {platform.name!r}: run gpuplane gitops up"
            )
        client = connect(state.kubeconfig)
        names = [application] if application else [ROOT_APPLICATION, REMOTE_ROOT_APPLICATION]
        for name in names:
            gitops.sync(client, name)
        return names

    def gitops_down(self, platform: Platform, reporter: Reporter) -> list[str]:
        state = self._state(platform)
        reporter.step("stopping Argo CD, redis and the git server; removing Argo CD's objects")
        client = connect(state.kubeconfig) if is_reachable(state.kubeconfig) else None
        changes = GitOps(state).down(client)
        services = Services(state)
        node = services.operator_in_cluster()
        if node is not None and client is not None:
            # The operator's pod loses its gateway: the host process takes over again.
            if deleted(client, Deployment, OPERATOR_DEPLOYMENT, OPERATOR_NAMESPACE):
                changes.append(f"Deployment {OPERATOR_NAMESPACE}/{OPERATOR_DEPLOYMENT} deleted")
            services.take_operator_back()
            real = tuple(n.name for n in platform.kubelet_nodes)
            changes += self._start_services(state, client, reporter, real)
        return changes

    def autoscale_up(self, platform: Platform, reporter: Reporter) -> list[str]:
        """The Prometheus adapter (built on first use) serving custom.metrics.k8s.io from
        the cluster's Prometheus, registered with the API server."""
        state = self._require_up(platform)
        prometheus = running_prometheus_url(state)
        if prometheus is None:
            raise PrerequisiteError(
                f"the Prometheus of cluster {platform.name!r} is not running: run gpuplane up"
            )
        binaries = self._built(platform, ("prometheus-adapter",), reporter)
        return MetricsAdapter(state).up(
            connect(state.kubeconfig), binaries["prometheus-adapter"], prometheus, reporter.step
        )

    def autoscale_status(self, platform: Platform) -> tuple[ComponentStatus, ...]:
        state = self._state(platform)
        client = connect(state.kubeconfig) if is_reachable(state.kubeconfig) else None
        return MetricsAdapter(state).statuses(client)

    def autoscale_down(self, platform: Platform, reporter: Reporter) -> list[str]:
        state = self._state(platform)
        reporter.step("stopping the Prometheus adapter; unregistering custom.metrics.k8s.io")
        client = connect(state.kubeconfig) if is_reachable(state.kubeconfig) else None
        return MetricsAdapter(state).down(client)

    def _built(
        self, platform: Platform, names: tuple[str, ...], reporter: Reporter
    ) -> dict[str, Path]:
        """The on-demand components ``names``, built (with progress) where not cached."""

        def report(progress: BuildProgress) -> None:
            reporter.progress(
                "building " + ", ".join(progress.binaries), progress.compiled, progress.total
            )

        return LocalToolchain.of(platform, self._cache).built(names, report)

    def _require_up(self, platform: Platform) -> LocalState:
        state = self._state(platform)
        if not is_reachable(state.kubeconfig):
            raise PrerequisiteError(f"cluster {platform.name!r} is not up: run gpuplane up")
        return state

    def _start_services(
        self, state: LocalState, client: Client, reporter: Reporter, real_nodes: tuple[str, ...]
    ) -> list[str]:
        """CRD and RBAC of the downscaler, its token, then Prometheus (discovering the pods
        of ``real_nodes`` with credentials of its own), traffic, downscaler."""
        services = Services(state)
        wanted = (*SERVICES, *((POD_TARGETS,) if real_nodes else ()))
        if services.operator_in_cluster() is not None:
            wanted = tuple(name for name in wanted if name != "downscaler")
        if all(services.running(name) for name in wanted):
            return []
        reporter.step("starting Prometheus, the traffic simulator and the downscaler")
        root = repo_root()
        apply_files(
            client,
            [*sorted((root / "charts/downscaler/crds").glob("*.yaml")), root / DOWNSCALER_RBAC],
        )
        token = mint_token(client, DOWNSCALER_NAMESPACE, DOWNSCALER_ACCOUNT)
        write_private(
            state.downscaler_kubeconfig,
            user_kubeconfig(state.kubeconfig, DOWNSCALER_ACCOUNT, {"token": token}),
        )
        pods = None
        if real_nodes:
            apply_files(client, [root / PROMETHEUS_RBAC])
            token = mint_token(client, DOWNSCALER_NAMESPACE, PROMETHEUS_ACCOUNT)
            write_private(
                state.prometheus_kubeconfig,
                user_kubeconfig(state.kubeconfig, PROMETHEUS_ACCOUNT, {"token": token}),
            )
            pods = PodDiscovery(state.prometheus_kubeconfig, real_nodes)
        started = services.start(state.kubeconfig, state.downscaler_kubeconfig, pods)
        return [f"{name} started" for name in started]

    def down(self, platform: Platform, reporter: Reporter) -> bool:
        state = self._state(platform)
        if not state.directory.exists():
            return False
        Services(state).stop_all()
        GitOps(state).stop((*GITOPS_PROCESSES, GITOPS_GATEWAY))
        MetricsAdapter(state).stop((ADAPTER_PROCESS,))
        KubeletFleet(platform, state).stop(reporter)
        if state.exists():
            reporter.step(f"stopping and deleting the local cluster {platform.name!r}")
            toolchain = LocalToolchain.of(platform, self._cache)
            kwokctl = component(toolchain.pins, "kwokctl").path(toolchain.cache)
            pids = running_pids(state)
            Kwokctl(kwokctl, state).delete()
            killed = stop_leftovers(pids)
            if killed:
                reporter.step(f"killed processes that ignored SIGTERM: {killed}")
        shutil.rmtree(state.directory)
        return True

    def status(self, platform: Platform) -> ClusterStatus:
        state = self._state(platform)
        running = is_reachable(state.kubeconfig)
        processes = component_statuses(state) + Services(state).statuses()
        operator_node = Services(state).operator_in_cluster()
        if operator_node is not None:
            client_or_none = connect(state.kubeconfig) if running else None
            processes += (operator_status(client_or_none, operator_node),)
        processes += KubeletFleet(platform, state).statuses()
        if GitOps(state).is_up():
            processes += GitOps(state).statuses()
        if MetricsAdapter(state).is_up():
            processes += (MetricsAdapter(state).process_status(),)
        if not running:
            return ClusterStatus(
                name=platform.name,
                backend="local",
                running=False,
                kubeconfig=state.kubeconfig if state.kubeconfig.is_file() else None,
                kubernetes_version=None,
                components=processes,
            )
        client = connect(state.kubeconfig)
        nodes = tuple(NodeStatus.of(node.to_dict()) for node in client.list(NodeResource))
        return ClusterStatus(
            name=platform.name,
            backend="local",
            running=True,
            kubeconfig=state.kubeconfig,
            kubernetes_version=version_of(get_raw(state.kubeconfig, "/version")),
            nodes=nodes,
            components=processes,
            simulated=simulated_parts(nodes, traffic_running=Services(state).running("traffic")),
        )


def _saved_choices(state: LocalState, platform: Platform) -> tuple[RuntimeChoice, ...] | None:
    """What ``up`` resolved for this cluster, if it is saved and still fits the platform
    (same nodes, same declared runtimes)."""
    try:
        rows = json.loads(state.runtimes.read_text())
        saved = tuple(RuntimeChoice(**row) for row in rows)
    except (OSError, ValueError, TypeError):
        return None
    declared = [(node.name, node.runtime) for node in platform.spec.nodes]
    return saved if [(c.node, c.declared) for c in saved] == declared else None


def save_choices(state: LocalState, choices: tuple[RuntimeChoice, ...]) -> None:
    state.directory.mkdir(parents=True, exist_ok=True)
    state.runtimes.write_text(json.dumps([dataclasses.asdict(c) for c in choices], indent=1))


def private_keys(state: LocalState) -> list[Path]:
    """kwokctl's keys readable by their owner alone: it writes its CA's and the admin's
    0644, and the CA key signs any identity (a node's, an admin's). Ours (etcd's, a
    node's) are written 0600; nothing else of the state is walked (a kubelet node's
    image layers live there too)."""
    keys = sorted(state.pki.glob("*.key"))
    for key in keys:
        key.chmod(0o600)
    return keys
