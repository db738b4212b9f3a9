"""Supervised local processes beside the local cluster: Prometheus, the traffic simulator
and the downscaler. Each runs detached with a pid file and a log under the cluster's
state dir; ports are chosen on 127.0.0.1 once and kept in services.json."""

from __future__ import annotations

import json
import shutil
import socket
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import httpx2
import yaml

from gpuplane.backends.base import ComponentStatus
from gpuplane.backends.local.state import LocalState
from gpuplane.backends.local.supervisor import Supervisor
from gpuplane.errors import OperationError, PrerequisiteError
from gpuplane.toolchain import repo_root

SERVICES = ("prometheus", "traffic", "downscaler")
# With kubelet nodes only: their pods' scrape targets, for Prometheus.
POD_TARGETS = "pod-targets"
# Started on demand by a verb (the demo's wake act), not by `up`; `down` stops it too.
ACTIVATOR = "activator"
SCRAPE_INTERVAL = "2s"


@dataclass(frozen=True)
class Ports:
    prometheus: int
    traffic: int
    downscaler_metrics: int
    downscaler_health: int

    @property
    def prometheus_url(self) -> str:
        return f"http://127.0.0.1:{self.prometheus}"

    @property
    def traffic_url(self) -> str:
        return f"http://127.0.0.1:{self.traffic}"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass(frozen=True)
class PodDiscovery:
    """Pods of the kubelet nodes, found through the API with ``kubeconfig`` (pods, read
    only) and scraped when they ask to be (``pod_targets``)."""

    kubeconfig: Path
    nodes: tuple[str, ...]


def prometheus_config(ports: Ports, rule_files: list[str], targets: Path) -> dict[str, object]:
    """Scrape the local cluster's exporters every 2 s and evaluate the platform's own rules;
    real workloads join through files in ``targets`` without a restart (a test's server,
    the activator, and the pods of kubelet nodes: ``pod_targets``). Their own
    ``namespace``/``deployment`` labels are kept (honor_labels): that is what the
    downscaler's signals and the HPA's metrics sum by."""

    def job(name: str, port: int) -> dict[str, object]:
        return {"job_name": name, "static_configs": [{"targets": [f"127.0.0.1:{port}"]}]}

    workloads = {
        "job_name": "workloads",
        "honor_labels": True,
        "file_sd_configs": [{"files": [str(targets / "*.json")], "refresh_interval": "5s"}],
    }

    return {
        "global": {"scrape_interval": SCRAPE_INTERVAL, "evaluation_interval": SCRAPE_INTERVAL},
        "rule_files": rule_files,
        "scrape_configs": [
            job("traffic", ports.traffic),
            job("downscaler", ports.downscaler_metrics),
            job("prometheus", ports.prometheus),
            workloads,
        ],
    }


def python_service() -> list[str]:
    """How a Python service starts: with faulthandler, so a crash in native code (an HTTP
    or JSON extension) leaves every thread's traceback in the service's log."""
    return [sys.executable, "-X", "faulthandler", "-m"]


def prometheus_binary() -> str:
    found = shutil.which("prometheus")
    if found is None:
        raise PrerequisiteError(
            "Prometheus is not installed: the local backend runs Debian's prometheus "
            "(apt-get install prometheus, or make prerequisites)"
        )
    return found


class Services(Supervisor):
    def __init__(self, state: LocalState) -> None:
        super().__init__(state.directory / "services")
        self.state = state

    @property
    def targets_dir(self) -> Path:
        return self.directory / "scrape-targets"

    def add_scrape_target(self, name: str, address: str, labels: dict[str, str]) -> Path:
        """Have Prometheus scrape ``address`` (host:port) as ``name`` from now on; written
        whole then renamed, so Prometheus never reads half a file."""
        self.targets_dir.mkdir(parents=True, exist_ok=True)
        target = self.targets_dir / f"{name}.json"
        partial = target.with_suffix(".partial")
        partial.write_text(json.dumps([{"targets": [address], "labels": labels}]))
        partial.replace(target)
        return target

    def remove_scrape_target(self, name: str) -> None:
        (self.targets_dir / f"{name}.json").unlink(missing_ok=True)

    def scrape_target(self, name: str) -> str | None:
        """The address Prometheus scrapes as ``name``; None when it scrapes none."""
        try:
            (target,) = json.loads((self.targets_dir / f"{name}.json").read_text())
            return str(target["targets"][0])
        except (OSError, ValueError, KeyError, IndexError, TypeError):
            return None

    def ports(self) -> Ports | None:
        try:
            return Ports(**json.loads((self.directory / "services.json").read_text()))
        except (OSError, ValueError, TypeError):
            return None

    def _ensure_ports(self) -> Ports:
        ports = self.ports()
        if ports is None:
            ports = Ports(free_port(), free_port(), free_port(), free_port())
            self.directory.mkdir(parents=True, exist_ok=True)
            (self.directory / "services.json").write_text(json.dumps(asdict(ports)))
        return ports

    def start(
        self, kubeconfig: Path, downscaler_kubeconfig: Path, pods: PodDiscovery | None = None
    ) -> list[str]:
        """Start every service that is not running; return what was started."""
        ports = self._ensure_ports()
        started = []
        if not self.running("prometheus"):
            config = self.directory / "prometheus.yml"
            rules = sorted(str(p) for p in (repo_root() / "observability" / "rules").glob("*.yaml"))
            self.targets_dir.mkdir(parents=True, exist_ok=True)
            config.write_text(yaml.safe_dump(prometheus_config(ports, rules, self.targets_dir)))
            self.spawn(
                "prometheus",
                [
                    prometheus_binary(),
                    f"--config.file={config}",
                    f"--storage.tsdb.path={self.directory / 'prometheus-data'}",
                    f"--web.listen-address=127.0.0.1:{ports.prometheus}",
                    "--storage.tsdb.retention.time=2d",
                ],
            )
            started.append("prometheus")
        if pods is not None and not self.running(POD_TARGETS):
            self.targets_dir.mkdir(parents=True, exist_ok=True)
            self.spawn(
                POD_TARGETS,
                [
                    *python_service(), "gpuplane.backends.local.pod_targets",
                    "--kubeconfig", str(pods.kubeconfig),
                    *(f"--node={node}" for node in pods.nodes),
                    "--out", str(self.targets_dir / "kubelet-pods.json"),
                ],
            )  # fmt: skip
            started.append(POD_TARGETS)
        if not self.running("traffic"):
            self.spawn(
                "traffic",
                [
                    *python_service(), "gpuplane.simulation.traffic",
                    "--kubeconfig", str(kubeconfig),
                    "--port", str(ports.traffic),
                    "--rates", str(self.directory / "traffic-rates.json"),
                ],
            )  # fmt: skip
            started.append("traffic")
        if not self.running("downscaler") and self.operator_in_cluster() is None:
            self.spawn(
                "downscaler",
                [
                    *python_service(), "gpuplane.downscaler.main",
                    "--kubeconfig", str(downscaler_kubeconfig),
                    "--prometheus-url", ports.prometheus_url,
                    # Every listener of this backend is on loopback: a policy may name
                    # another Prometheus there (the fault tests' own), nowhere else.
                    "--allow-prometheus-url", "http://127.0.0.1:*",
                    "--metrics-address", f"127.0.0.1:{ports.downscaler_metrics}",
                    "--health-address", f"127.0.0.1:{ports.downscaler_health}",
                    # one supervised slot: a restart resumes the lease instead of waiting
                    "--identity", f"gpuplane-sim-{self.state.name}",
                ],
            )  # fmt: skip
            started.append("downscaler")
        self._wait_ready(ports)
        return started

    # ---- the operator, on the host or delivered into the cluster ----
    @property
    def _in_cluster_marker(self) -> Path:
        return self.directory / "downscaler.in-cluster"

    def operator_in_cluster(self) -> str | None:
        """The kubelet node the downscaler's pod runs on when Argo CD delivers it there
        (the host process then stays stopped: one operator, never two); else None."""
        try:
            return self._in_cluster_marker.read_text().strip() or None
        except OSError:
            return None

    def hand_operator_to_cluster(self, node: str) -> bool:
        """Stop the host-process operator for good: its pod on ``node`` takes over.
        True when a running process was stopped."""
        self.directory.mkdir(parents=True, exist_ok=True)
        self._in_cluster_marker.write_text(node + "\n")
        was_running = self.running("downscaler")
        self.stop(("downscaler",))
        return was_running

    def take_operator_back(self) -> None:
        """The host process acts again at the next start (the pod is gone)."""
        self._in_cluster_marker.unlink(missing_ok=True)

    def _wait_ready(self, ports: Ports, timeout: float = 60.0) -> None:
        checks = {
            "prometheus": f"{ports.prometheus_url}/-/ready",
            "traffic": f"{ports.traffic_url}/healthz",
        }
        if self.operator_in_cluster() is None:
            checks["downscaler"] = f"http://127.0.0.1:{ports.downscaler_health}/healthz"
        deadline = time.monotonic() + timeout
        pending = dict(checks)
        with httpx2.Client(timeout=2.0, trust_env=False) as http:
            while pending:
                for name, url in list(pending.items()):
                    if not self.running(name):
                        raise OperationError(f"{name} exited at start; see {self.log_file(name)}")
                    try:
                        if http.get(url).status_code == 200:
                            del pending[name]
                    except httpx2.HTTPError:
                        pass
                if pending and time.monotonic() > deadline:
                    names = ", ".join(pending)
                    raise OperationError(
                        f"{names} not ready after {timeout:.0f}s; see {self.directory}"
                    )
                time.sleep(0.1)

    def stop_all(self) -> None:
        self.stop((*SERVICES, ACTIVATOR, POD_TARGETS))

    def statuses(self) -> tuple[ComponentStatus, ...]:
        ports = self.ports()
        on_host = self.operator_in_cluster() is None  # else its pod is listed by the backend
        details = {
            "prometheus": ports.prometheus_url if ports else "",
            "traffic": ports.traffic_url if ports else "",
            "downscaler": f"metrics http://127.0.0.1:{ports.downscaler_metrics}/metrics"
            if ports
            else "",
        }
        statuses = [
            ComponentStatus(
                name,
                self.running(name),
                f"pid {self.pid(name)}, {details[name]}" if self.running(name) else "not running",
                simulated=name == "traffic",
            )
            for name in SERVICES
            if name != "downscaler" or on_host
        ]
        if self.running(POD_TARGETS):
            detail = f"pid {self.pid(POD_TARGETS)}, the kubelet nodes' pods as scrape targets"
            statuses.append(ComponentStatus(POD_TARGETS, True, detail))
        if self.running(ACTIVATOR):  # started on demand (the demo's wake act), listed then
            address = self.scrape_target(ACTIVATOR)
            scraped = f"metrics http://{address}/metrics" if address else "metrics not scraped"
            statuses.append(
                ComponentStatus(ACTIVATOR, True, f"pid {self.pid(ACTIVATOR)}, {scraped}")
            )
        return tuple(statuses)


def running_prometheus_url(state: LocalState) -> str | None:
    """The local cluster's Prometheus, when it runs."""
    services = Services(state)
    ports = services.ports()
    return ports.prometheus_url if ports is not None and services.running("prometheus") else None
