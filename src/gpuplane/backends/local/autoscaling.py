"""The custom metrics API beside the local cluster: the Prometheus adapter (built from its
Go module) as a supervised process, registered with the real kube-apiserver through an
APIService, so the HPA controller inside kube-controller-manager scales on Prometheus
queries (deploy/prometheus-adapter/config.yaml).

The route from the API server to the adapter: an APIService names a Service, and the
aggregator resolves a Service of type ExternalName to its DNS name (a ClusterIP would need
kube-proxy; Endpoints may not hold loopback addresses). The Service here is an
ExternalName of ``localhost``, so the API server dials the adapter on 127.0.0.1 and checks
its certificate against the caBundle for ``prometheus-adapter.custom-metrics.svc``. On a
real cluster the same APIService names a ClusterIP Service in front of the adapter's pod.
"""

from __future__ import annotations

import base64
import datetime
import json
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from lightkube import Client
from lightkube.core.exceptions import ApiError
from lightkube.resources.apiregistration_v1 import APIService
from lightkube.resources.core_v1 import Namespace, Service

from gpuplane.backends.base import ComponentStatus
from gpuplane.backends.local.pki import issue, new_key, pem_key
from gpuplane.backends.local.services import free_port
from gpuplane.backends.local.state import LocalState
from gpuplane.backends.local.supervisor import Supervisor
from gpuplane.backends.local.tokens import mint_token
from gpuplane.errors import OperationError
from gpuplane.kube.apply import apply_documents, apply_files, delete_files
from gpuplane.kube.files import user_kubeconfig, write_private
from gpuplane.kube.objects import deleted, wait_gone
from gpuplane.toolchain import repo_root

NAMESPACE = "custom-metrics"
ACCOUNT = "prometheus-adapter"
SERVICE = "prometheus-adapter"
PROCESS = "prometheus-adapter"
RBAC = "deploy/prometheus-adapter/rbac.yaml"
RULES = "deploy/prometheus-adapter/config.yaml"
GROUP = "custom.metrics.k8s.io"
# The HPA controller asks for v1beta2 and falls back to v1beta1: both are served.
VERSIONS = ("v1beta2", "v1beta1")
# How often the adapter re-reads which series exist: a new Deployment's metric is
# offered within this, and it must not be shorter than Prometheus' scrape interval.
RELIST_INTERVAL = "10s"
CERTIFICATE_DAYS = 365


def api_service_name(version: str) -> str:
    return f"{version}.{GROUP}"


def adapter_argv(binary: Path, port: int, paths: AdapterPaths, prometheus_url: str) -> list[str]:
    kubeconfig = str(paths.kubeconfig)
    return [
        str(binary),
        f"--secure-port={port}",
        "--bind-address=127.0.0.1",
        f"--tls-cert-file={paths.serving_cert}",
        f"--tls-private-key-file={paths.serving_key}",
        f"--lister-kubeconfig={kubeconfig}",
        f"--authentication-kubeconfig={kubeconfig}",
        f"--authorization-kubeconfig={kubeconfig}",
        f"--prometheus-url={prometheus_url}/",
        f"--config={paths.rules}",
        f"--metrics-relist-interval={RELIST_INTERVAL}",
        "--v=1",
    ]


def registration(port: int, ca_bundle: bytes) -> list[dict[str, Any]]:
    """The Service the aggregator dials (localhost, the adapter's port) and one APIService
    per served version, trusting the adapter's own CA."""
    service: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": SERVICE, "namespace": NAMESPACE},
        "spec": {
            "type": "ExternalName",
            "externalName": "localhost",
            "ports": [{"name": "https", "port": port, "targetPort": port}],
        },
    }
    api_services = [
        {
            "apiVersion": "apiregistration.k8s.io/v1",
            "kind": "APIService",
            "metadata": {"name": api_service_name(version)},
            "spec": {
                "group": GROUP,
                "version": version,
                "service": {"name": SERVICE, "namespace": NAMESPACE, "port": port},
                "caBundle": base64.b64encode(ca_bundle).decode(),
                "groupPriorityMinimum": 100,
                "versionPriority": 200 if version == "v1beta2" else 100,
            },
        }
        for version in VERSIONS
    ]
    return [service, *api_services]


class AdapterPaths:
    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.kubeconfig = directory / "adapter.kubeconfig"
        self.ca = directory / "ca.crt"
        self.serving_cert = directory / "serving.crt"
        self.serving_key = directory / "serving.key"
        self.rules = directory / "config.yaml"
        self.port_file = directory / "port.json"


def issue_serving_certificate(paths: AdapterPaths, now: datetime.datetime) -> None:
    """A CA of the adapter's own and its serving certificate for the name the aggregator
    checks (``<service>.<namespace>.svc``); the CA's key signs nothing more and is not kept."""

    def name(common: str) -> x509.Name:
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common)])

    validity = datetime.timedelta(days=CERTIFICATE_DAYS)
    ca_key, key = new_key(), new_key()
    ca = issue(
        name("gpuplane-prometheus-adapter-ca"),
        ca_key,
        issuer=None,
        usages=(),
        now=now,
        validity=validity,
    )
    serving = issue(
        name(f"{SERVICE}.{NAMESPACE}.svc"),
        key,
        issuer=(ca.subject, ca_key),
        usages=(ExtendedKeyUsageOID.SERVER_AUTH,),
        now=now,
        validity=validity,
        dns_names=(f"{SERVICE}.{NAMESPACE}.svc", f"{SERVICE}.{NAMESPACE}.svc.cluster.local"),
    )
    pem = serialization.Encoding.PEM
    paths.directory.mkdir(parents=True, exist_ok=True)
    paths.directory.chmod(0o700)
    paths.ca.write_bytes(ca.public_bytes(pem))
    paths.serving_cert.write_bytes(serving.public_bytes(pem))
    paths.serving_key.touch(mode=0o600)
    paths.serving_key.write_bytes(pem_key(key))


class MetricsAdapter(Supervisor):
    def __init__(self, state: LocalState) -> None:
        super().__init__(state.directory / "autoscale")
        self.state = state
        self.paths = AdapterPaths(self.directory)

    def port(self) -> int | None:
        try:
            return int(json.loads(self.paths.port_file.read_text())["port"])
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def _ensure_port(self) -> int:
        port = self.port()
        if port is None:
            port = free_port()
            self.directory.mkdir(parents=True, exist_ok=True)
            self.paths.port_file.write_text(json.dumps({"port": port}))
        return port

    def is_up(self) -> bool:
        return self.running(PROCESS)

    def up(
        self, client: Client, binary: Path, prometheus_url: str, step: Callable[[str], None]
    ) -> list[str]:
        """Start the adapter if it is not running, register it; return what changed."""
        changes: list[str] = []
        port = self._ensure_port()
        step("the adapter's credentials (its own ServiceAccount) and serving certificate")
        apply_files(client, [repo_root() / RBAC])
        token = mint_token(client, NAMESPACE, ACCOUNT)
        write_private(
            self.paths.kubeconfig, user_kubeconfig(self.state.kubeconfig, ACCOUNT, {"token": token})
        )
        if not self.paths.serving_cert.is_file():
            issue_serving_certificate(self.paths, datetime.datetime.now(datetime.UTC))
        # The rules are copied: a running adapter keeps the rules it started with.
        self.paths.rules.write_text((repo_root() / RULES).read_text())
        if not self.is_up():
            step(f"starting the Prometheus adapter on 127.0.0.1:{port}")
            self.spawn(PROCESS, adapter_argv(binary, port, self.paths, prometheus_url))
            changes.append(f"{PROCESS} started")
        step(f"registering {GROUP} ({', '.join(VERSIONS)}) with the API server")
        apply_documents(client, registration(port, self.paths.ca.read_bytes()))
        self.wait_available(client)
        return changes

    def wait_available(self, client: Client, timeout: float = 90.0) -> None:
        """Until every APIService is Available (the API server reached the adapter and
        read its discovery), or say why not."""
        deadline = time.monotonic() + timeout
        pending = [api_service_name(v) for v in VERSIONS]
        reason = "not checked yet"
        while pending:
            if not self.is_up():
                raise OperationError(f"the Prometheus adapter exited; see {self.log_file(PROCESS)}")
            available, reason = api_service_condition(client, pending[0])
            if available:
                pending.pop(0)
                continue
            if time.monotonic() > deadline:
                raise OperationError(
                    f"APIService {pending[0]} not Available after {timeout:.0f}s: {reason}; "
                    f"see {self.log_file(PROCESS)}"
                )
            time.sleep(0.5)

    def process_status(self) -> ComponentStatus:
        detail = f"pid {self.pid(PROCESS)}, https://127.0.0.1:{self.port()}"
        return ComponentStatus(PROCESS, self.is_up(), detail if self.is_up() else "not running")

    def statuses(self, client: Client | None) -> tuple[ComponentStatus, ...]:
        rows = [self.process_status()]
        for version in VERSIONS:
            name = api_service_name(version)
            if client is None:
                rows.append(ComponentStatus(f"APIService {name}", False, "cluster not reachable"))
                continue
            available, reason = api_service_condition(client, name)
            rows.append(ComponentStatus(f"APIService {name}", available, reason))
        return tuple(rows)

    def down(self, client: Client | None) -> list[str]:
        """Stop the adapter and unregister it (an APIService left behind would make every
        discovery of the API server report the group unavailable)."""
        changes = [f"{PROCESS} stopped"] if self.is_up() else []
        self.stop((PROCESS,))
        if client is not None:
            for version in VERSIONS:
                if deleted(client, APIService, api_service_name(version)):
                    changes.append(f"APIService {api_service_name(version)} deleted")
            deleted(client, Service, SERVICE, NAMESPACE)
            changes += delete_files(client, [repo_root() / RBAC])
            wait_gone(client, [(Namespace, NAMESPACE)])
        shutil.rmtree(self.directory, ignore_errors=True)
        return changes


def api_service_condition(client: Client, name: str) -> tuple[bool, str]:
    """(Available, the API server's reason) of the APIService ``name``."""
    try:
        found = client.get(APIService, name)
    except ApiError as error:
        if error.status.code == 404:
            return False, "not registered"
        raise
    conditions = (found.status.conditions if found.status else None) or []
    for condition in conditions:
        if condition.type == "Available":
            detail = condition.message or condition.reason or condition.status
            return condition.status == "True", str(detail)
    return False, "no Available condition yet"
