"""Argo CD beside the local cluster: bring it up, read it, sync it, take it down.

Processes (supervised like the backend's other services, under ``<state>/gitops``): redis
(Argo CD's cache, loopback, a password), a read-only git server on loopback that serves
the source repository, Argo CD's repo server and application controller. The controller
acts with its own ServiceAccount (deploy/argocd/rbac.yaml), never the admin's.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import socket
import subprocess
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

import httpx2
from lightkube import Client
from lightkube.core.exceptions import ApiError
from lightkube.generic_resource import create_namespaced_resource
from lightkube.resources.apiextensions_v1 import CustomResourceDefinition
from lightkube.resources.apps_v1 import DaemonSet, Deployment, StatefulSet
from lightkube.resources.batch_v1 import Job
from lightkube.resources.core_v1 import Namespace, Node, Pod, Secret
from lightkube.resources.rbac_authorization_v1 import ClusterRole, ClusterRoleBinding
from lightkube.types import PatchType

from gpuplane.backends.base import ApplicationStatus, ComponentStatus
from gpuplane.backends.local.gitops.applications import row_of, workloads_of
from gpuplane.backends.local.gitops.argocd import (
    NAMESPACE,
    REMOTE_ROOT_APPLICATION,
    ROOT_APPLICATION,
    GitOpsPaths,
    GitOpsPorts,
    common_env,
    controller_argv,
    git_daemon_argv,
    project_with_repository,
    redis_argv,
    repo_server_argv,
    repo_url,
    root_application,
    server_secret,
    settings,
)
from gpuplane.backends.local.gitops.in_cluster_downscaler import (
    IN_CLUSTER_API_PORT,
    GatewayPorts,
    gateway_address,
)
from gpuplane.backends.local.kubelet.layout import POD_SUBNET
from gpuplane.backends.local.services import free_port, python_service
from gpuplane.backends.local.state import LocalState
from gpuplane.backends.local.supervisor import Supervisor
from gpuplane.backends.local.tokens import mint_token
from gpuplane.errors import BadInputError, OperationError, PrerequisiteError
from gpuplane.kube.apply import apply_documents, apply_files, read_documents
from gpuplane.kube.files import user_kubeconfig, write_private
from gpuplane.kube.objects import deleted, exists, wait_gone
from gpuplane.toolchain import repo_root, tools_dir
from gpuplane.toolchain.crds import argocd_crd_files, monitoring_crd_files

ARGOCD_RBAC = "deploy/argocd/rbac.yaml"
CONTROLLER_ACCOUNT = "argocd-application-controller"
REPOSITORY_NAME = "platform"
PROCESSES = ("redis", "git", "repo-server", "controller")
# Started only where the downscaler's pod runs on a kubelet node (in_cluster_downscaler).
GATEWAY = "pod-gateway"
WORKLOAD_KINDS: dict[str, Any] = {
    "Deployment": Deployment,
    "DaemonSet": DaemonSet,
    "StatefulSet": StatefulSet,
    "Job": Job,
}
Application = create_namespaced_resource("argoproj.io", "v1alpha1", "Application", "applications")
AppProject = create_namespaced_resource("argoproj.io", "v1alpha1", "AppProject", "appprojects")
ARGOCD_CRDS = ("applications.argoproj.io", "appprojects.argoproj.io")


def host_binary(name: str, package: str) -> str:
    found = shutil.which(name)
    if found is None:
        raise PrerequisiteError(
            f"{name} is not installed: gpuplane gitops runs Debian's {package} "
            f"(apt-get install {package}, or make prerequisites)"
        )
    return found


def git_dir(repository: Path) -> Path:
    """The git directory of ``repository``, which must have a commit: Argo CD reads
    committed trees only."""
    if not repository.is_dir():
        raise BadInputError(f"--repo {repository}: no such directory")
    found = subprocess.run(
        [
            host_binary("git", "git"),
            "-C",
            str(repository),
            "rev-parse",
            "--absolute-git-dir",
            "--verify",
            "HEAD",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    if found.returncode != 0:
        raise BadInputError(
            f"--repo {repository}: not a git repository with a commit "
            f"({found.stderr.strip() or 'git rev-parse failed'})"
        )
    return Path(found.stdout.splitlines()[0])


class GitOps(Supervisor):
    def __init__(self, state: LocalState) -> None:
        super().__init__(state.directory / "gitops")
        self.state = state
        self.paths = GitOpsPaths(self.directory)

    # ---- ports and secrets, chosen once and kept ----
    def ports(self) -> GitOpsPorts | None:
        try:
            return GitOpsPorts(**json.loads((self.directory / "ports.json").read_text()))
        except (OSError, ValueError, TypeError):
            return None

    def _ensure_ports(self) -> GitOpsPorts:
        ports = self.ports()
        if ports is None:
            ports = GitOpsPorts(*(free_port() for _ in range(5)))
            self.directory.mkdir(parents=True, exist_ok=True)
            (self.directory / "ports.json").write_text(json.dumps(asdict(ports)))
        return ports

    def _redis_password(self) -> str:
        path = self.paths.redis_password
        if not path.is_file():
            self.directory.mkdir(parents=True, exist_ok=True)
            descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(descriptor, "w") as handle:
                handle.write(secrets.token_urlsafe(32))
        return path.read_text().strip()

    def is_up(self) -> bool:
        return any(self.running(name) for name in PROCESSES)

    # ---- the pod gateway: the host's loopback listeners as pods reach them ----
    def gateway_ports(self) -> GatewayPorts | None:
        try:
            return GatewayPorts(**json.loads((self.directory / "gateway.json").read_text()))
        except (OSError, ValueError, TypeError):
            return None

    def start_gateway(
        self, api_server: int, prometheus: int, timeout: float = 10.0
    ) -> tuple[GatewayPorts, bool]:
        """Relay the API server's and Prometheus' loopback ports from the pod bridge;
        return its ports and whether it was started now."""
        ports = self.gateway_ports()
        if ports is None:
            ports = GatewayPorts(IN_CLUSTER_API_PORT, free_port())
            self.directory.mkdir(parents=True, exist_ok=True)
            (self.directory / "gateway.json").write_text(json.dumps(asdict(ports)))
        if self.running(GATEWAY):
            return ports, False
        gateway = gateway_address()
        self.log_file(GATEWAY).unlink(missing_ok=True)
        self.spawn(
            GATEWAY,
            [
                *python_service(), "gpuplane.backends.local.pod_gateway",
                "--subnet", POD_SUBNET,
                f"{gateway}:{ports.api_server}=127.0.0.1:{api_server}",
                f"{gateway}:{ports.prometheus}=127.0.0.1:{prometheus}",
            ],
        )  # fmt: skip
        deadline = time.monotonic() + timeout
        # Listening once it has logged both routes (its address may not exist yet, so a
        # connection cannot tell).
        while self.log_file(GATEWAY).read_text(errors="replace").count("relaying") < 2:
            if not self.running(GATEWAY):
                raise OperationError(
                    f"the pod gateway exited at start; see {self.log_file(GATEWAY)}"
                )
            if time.monotonic() > deadline:
                raise OperationError(f"the pod gateway not listening after {timeout:.0f}s")
            time.sleep(0.1)
        return ports, True

    def repository_url(self) -> str | None:
        ports = self.ports()
        return repo_url(ports, REPOSITORY_NAME) if ports is not None else None

    # ---- up ----
    def up(
        self,
        client: Client,
        argocd: Path,
        helm: Path,
        repository: Path,
        step: Callable[[str], None],
        *,
        downscaler: dict[str, Any] | None = None,
    ) -> list[str]:
        """Start what is not running and apply the root Applications (``downscaler``: the
        operator chart's values, where its pod runs on a kubelet node); return what
        changed."""
        redis_server = host_binary("redis-server", "redis-server")
        git = host_binary("git", "git")
        source = git_dir(repository)
        ports = self._ensure_ports()
        password = self._redis_password()
        changes: list[str] = []
        step("installing Argo CD's CRDs and settings, and its controller's credentials")
        self._install(client)
        self._serve(source)
        env = {**os.environ, "PATH": f"{helm.parent}{os.pathsep}{os.environ.get('PATH', '')}"}
        starts: list[tuple[str, list[str], dict[str, str] | None]] = [
            ("redis", redis_argv(redis_server, ports, self.paths), None),
            ("git", git_daemon_argv(git, ports, self.paths), None),
            (
                "repo-server",
                repo_server_argv(str(argocd), ports),
                common_env(env, "argocd-repo-server", self.paths, password),
            ),
            (
                "controller",
                controller_argv(str(argocd), ports, self.paths),
                common_env(env, "argocd-application-controller", self.paths, password),
            ),
        ]
        for name, argv, process_env in starts:
            if not self.running(name):
                if name == "redis":
                    self.paths.redis_data.mkdir(parents=True, exist_ok=True)
                if name in ("repo-server", "controller"):
                    for sub in ("tls", "ssh", "gpg/keys", "gpg/source"):
                        (self.paths.argocd_home / sub).mkdir(parents=True, exist_ok=True)
                step(f"starting {name}")
                self.spawn(name, argv, env=process_env)
                changes.append(f"{name} started")
        self._wait_ready(ports)
        url = repo_url(ports, REPOSITORY_NAME)
        step(f"applying the platform's root Applications from {url} (HEAD)")
        self._apply_roots(client, url, downscaler or {})
        return changes

    def _install(self, client: Client) -> None:
        tools = tools_dir()
        apply_files(client, [*argocd_crd_files(tools), *monitoring_crd_files(tools)])
        apply_files(client, [repo_root() / ARGOCD_RBAC])
        self._wait_established(client, ARGOCD_CRDS)
        apply_documents(client, [settings()])
        if not exists(client, Secret, "argocd-secret", NAMESPACE):
            apply_documents(client, [server_secret(secrets.token_urlsafe(32))])
        token = mint_token(client, NAMESPACE, CONTROLLER_ACCOUNT)
        write_private(
            self.paths.controller_kubeconfig,
            user_kubeconfig(self.state.kubeconfig, CONTROLLER_ACCOUNT, {"token": token}),
        )

    @staticmethod
    def _wait_established(client: Client, names: tuple[str, ...], timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        for name in names:
            while True:
                crd = client.get(CustomResourceDefinition, name)
                conditions = (crd.status.conditions if crd.status else None) or []
                if any(c.type == "Established" and c.status == "True" for c in conditions):
                    break
                if time.monotonic() > deadline:
                    raise OperationError(f"CRD {name} not Established after {timeout:.0f}s")
                time.sleep(0.2)

    def _serve(self, source: Path) -> None:
        """The git server's one repository: a link to the source's git directory, so a
        commit there is served at once."""
        self.paths.repos.mkdir(parents=True, exist_ok=True)
        link = self.paths.repos / f"{REPOSITORY_NAME}.git"
        if link.is_symlink() and link.readlink() == source:
            return
        link.unlink(missing_ok=True)
        link.symlink_to(source, target_is_directory=True)

    def _wait_ready(self, ports: GitOpsPorts, timeout: float = 60.0) -> None:
        listeners = {
            "redis": ports.redis,
            "git": ports.git,
            "repo-server": ports.repo_server,
        }
        deadline = time.monotonic() + timeout
        pending = dict(listeners)
        controller_ready = False
        with httpx2.Client(timeout=2.0, trust_env=False) as http:
            while pending or not controller_ready:
                for name in [*pending, "controller"]:
                    if not self.running(name):
                        raise OperationError(f"{name} exited at start; see {self.log_file(name)}")
                for name, port in list(pending.items()):
                    if _accepts(port):
                        del pending[name]
                if not controller_ready:
                    try:
                        url = f"http://127.0.0.1:{ports.controller_metrics}/healthz"
                        controller_ready = http.get(url).status_code == 200
                    except httpx2.HTTPError:
                        pass
                if time.monotonic() > deadline:
                    names = ", ".join([*pending, *([] if controller_ready else ["controller"])])
                    raise OperationError(
                        f"{names} not ready after {timeout:.0f}s; see {self.directory}"
                    )
                time.sleep(0.2)

    def _apply_roots(self, client: Client, url: str, downscaler: dict[str, Any]) -> None:
        gitops = repo_root() / "gitops"
        (project,) = read_documents([gitops / "projects" / "platform.yaml"])
        (template,) = read_documents([gitops / "bootstrap" / "root-application.yaml"])
        local = root_application(template, url, "HEAD", "local", ROOT_APPLICATION)
        local["spec"]["source"]["helm"]["valuesObject"]["downscaler"] = downscaler
        roots = [
            local,
            root_application(template, url, "HEAD", "remote", REMOTE_ROOT_APPLICATION),
        ]
        apply_documents(client, [project_with_repository(project, url), *roots])

    # ---- read ----
    def applications(self, client: Client) -> list[dict[str, Any]]:
        # Generic resources are dicts already (lightkube), typed loosely.
        return [dict(item) for item in client.list(Application, namespace=NAMESPACE)]

    def rows(self, client: Client) -> list[ApplicationStatus]:
        url = self.repository_url() or ""
        kwok_nodes = {
            str(node.metadata.name)
            for node in client.list(Node)
            if node.metadata and (node.metadata.annotations or {}).get("kwok.x-k8s.io/node")
        }
        apps = sorted(self.applications(client), key=lambda a: str(a["metadata"]["name"]))
        return [row_of(app, url, self._on_kwok(client, app, kwok_nodes)) for app in apps]

    @staticmethod
    def _on_kwok(client: Client, application: dict[str, Any], kwok_nodes: set[str]) -> bool:
        """True when a pod of one of the application's own workloads (matched by the
        workload's selector, not by namespace: apps share ``ml``) runs on a KWOK node."""
        for kind, namespace, name in workloads_of(application):
            resource = WORKLOAD_KINDS.get(kind)
            if resource is None or not namespace:
                continue
            try:
                workload = client.get(resource, name, namespace=namespace)
            except ApiError:
                continue  # not created yet, or pruned since Argo CD reported it
            selector = workload.spec.selector if workload.spec else None
            labels = (selector.matchLabels if selector else None) or {}
            if not labels:
                continue
            for pod in client.list(Pod, namespace=namespace, labels=labels):
                if pod.spec and pod.spec.nodeName in kwok_nodes:
                    return True
        return False

    def statuses(self) -> tuple[ComponentStatus, ...]:
        ports = self.ports()
        details = {
            "redis": f"127.0.0.1:{ports.redis} (password)" if ports else "",
            "git": self.repository_url() or "",
            "repo-server": f"127.0.0.1:{ports.repo_server}" if ports else "",
            "controller": f"metrics :{ports.controller_metrics}/metrics" if ports else "",
        }
        statuses = [
            ComponentStatus(
                f"argocd {name}" if name in ("repo-server", "controller") else f"gitops {name}",
                self.running(name),
                f"pid {self.pid(name)}, {details[name]}" if self.running(name) else "not running",
            )
            for name in PROCESSES
        ]
        gateway = self.gateway_ports()
        if gateway is not None:  # listed once started: it serves the operator's pod
            detail = (
                f"pid {self.pid(GATEWAY)}, {gateway_address()}:{gateway.api_server} -> the API "
                f"server, :{gateway.prometheus} -> Prometheus (pods only)"
            )
            running = self.running(GATEWAY)
            statuses.append(
                ComponentStatus(f"gitops {GATEWAY}", running, detail if running else "not running")
            )
        return tuple(statuses)

    # ---- sync ----
    def sync(self, client: Client, name: str) -> None:
        """Refresh ``name`` from git now and start a sync of it (not waiting for the end)."""
        try:
            client.get(Application, name, namespace=NAMESPACE)
        except ApiError as error:
            if error.status.code == 404:
                names = ", ".join(sorted(a["metadata"]["name"] for a in self.applications(client)))
                raise BadInputError(f"no Application {name!r} (there are: {names})") from error
            raise
        patch = {
            "metadata": {"annotations": {"argocd.argoproj.io/refresh": "hard"}},
            "operation": {
                "initiatedBy": {"username": "gpuplane"},
                "sync": {"syncStrategy": {"hook": {}}},
            },
        }
        client.patch(Application, name, patch, namespace=NAMESPACE, patch_type=PatchType.MERGE)

    # ---- down ----
    def down(self, client: Client | None) -> list[str]:
        """Stop every process, then remove Argo CD's footprint from the cluster (its
        Applications, project, CRDs, settings, credentials); the objects it synced stay."""
        changes = [f"{name} stopped" for name in (*PROCESSES, GATEWAY) if self.running(name)]
        self.stop((*PROCESSES, GATEWAY))
        if client is not None:
            changes += self._remove_footprint(client)
        shutil.rmtree(self.directory, ignore_errors=True)
        return changes

    def _remove_footprint(self, client: Client) -> list[str]:
        removed: list[str] = []
        for resource in (Application, AppProject):
            try:
                items = list(client.list(resource, namespace=NAMESPACE))
            except ApiError:
                continue
            for item in items:
                name = str(item.metadata.name) if item.metadata else ""
                # Nothing runs to honour Argo CD's finalizers any more: without this the
                # deletion would wait forever (and a cascade would delete the platform).
                unblocked = {"metadata": {"finalizers": None}}
                client.patch(
                    resource, name, unblocked, namespace=NAMESPACE, patch_type=PatchType.MERGE
                )
                if deleted(client, resource, name, NAMESPACE):
                    removed.append(f"{item.kind}/{name} deleted")
        for crd in ARGOCD_CRDS:
            if deleted(client, CustomResourceDefinition, crd):
                removed.append(f"CRD {crd} deleted")
        for cluster_kind in (ClusterRoleBinding, ClusterRole):
            deleted(client, cluster_kind, "gpuplane-argocd-application-controller")
        if deleted(client, Namespace, NAMESPACE):
            removed.append(f"namespace {NAMESPACE} deleted")
        wait_gone(client, [(CustomResourceDefinition, crd) for crd in ARGOCD_CRDS])
        wait_gone(client, [(Namespace, NAMESPACE)])
        return removed


def _accepts(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False
