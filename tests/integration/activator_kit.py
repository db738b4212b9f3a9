"""The activator as a real process with its own least-privilege token, a backend process
that runs only while its Deployment has ready replicas (what a kubelet would do for a
KWOK pod), and the Service whose EndpointSlices the activator watches."""

from __future__ import annotations

import contextlib
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx2
import yaml
from lightkube import Client
from lightkube.resources.apps_v1 import Deployment
from lightkube.resources.core_v1 import Service

from gpuplane.backends.local.processes import terminate
from gpuplane.backends.local.services import free_port
from gpuplane.backends.local.tokens import mint_token
from gpuplane.kube.apply import apply_files
from gpuplane.kube.files import user_kubeconfig, write_private
from gpuplane.metrics_text import sample_sum

REPO = Path(__file__).resolve().parents[2]
ACCOUNT = "gpuplane-activator"
BACKEND_APP = Path(__file__).with_name("backend_app.py")


def activator_kubeconfig(client: Client, admin_kubeconfig: Path, target: Path) -> Path:
    apply_files(client, [REPO / "deploy" / "activator" / "rbac.yaml"])
    token = mint_token(client, "gpuplane-system", ACCOUNT)
    write_private(target, user_kubeconfig(admin_kubeconfig, ACCOUNT, {"token": token}))
    return target


def service(namespace: str, name: str) -> Service:
    return Service.from_dict(
        {
            "metadata": {"name": name, "namespace": namespace},
            "spec": {
                "selector": {"app.kubernetes.io/name": name},
                "ports": [{"name": "http", "port": 80, "targetPort": 8080}],
            },
        }
    )


@dataclass
class StandIn:
    """Runs the backend process while the Deployment has ready replicas."""

    client: Client
    namespace: str
    name: str
    port: int
    log: Path
    starts: int = 0
    process: subprocess.Popen[bytes] | None = None
    stop: threading.Event = field(default_factory=threading.Event)

    def _ready(self) -> int:
        live = self.client.get(Deployment, self.name, namespace=self.namespace)
        return int(live.status.readyReplicas or 0) if live.status else 0

    def follow(self) -> None:
        while not self.stop.wait(0.1):
            with contextlib.suppress(Exception):
                ready = self._ready()
                running = self.process is not None and self.process.poll() is None
                if ready and not running:
                    with self.log.open("ab") as out:
                        command = [sys.executable, str(BACKEND_APP), "--port", str(self.port)]
                        self.process = subprocess.Popen(command, stdout=out, stderr=out)
                    self.starts += 1
                elif not ready and running and self.process is not None:
                    self.process.terminate()
                    self.process.wait(5)

    def close(self) -> None:
        self.stop.set()
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(5)


@contextlib.contextmanager
def stand_in(client: Client, namespace: str, name: str, log: Path) -> Iterator[StandIn]:
    backend = StandIn(client, namespace, name, free_port(), log)
    thread = threading.Thread(target=backend.follow, daemon=True)
    thread.start()
    try:
        yield backend
    finally:
        backend.close()
        thread.join(5)


@dataclass
class Activator:
    url: str
    metrics_url: str
    process: subprocess.Popen[bytes]
    log: Path

    def metric(self, name: str, **labels: str) -> float:
        text = httpx2.get(f"{self.metrics_url}/metrics", trust_env=False, timeout=5).text
        return sample_sum(text, name, **labels)


def routes_file(directory: Path, backends: list[dict[str, Any]], **limits: float) -> Path:
    path = directory / "routes.yaml"
    path.write_text(yaml.safe_dump({"backends": backends, "limits": limits}))
    return path


@contextlib.contextmanager
def running_activator(routes: Path, kubeconfig: Path, log: Path) -> Iterator[Activator]:
    port, metrics = free_port(), free_port()
    command = [
        sys.executable, "-m", "gpuplane.activator.main", "--config", str(routes),
        "--kubeconfig", str(kubeconfig), "--listen", f"127.0.0.1:{port}",
        "--metrics-address", f"127.0.0.1:{metrics}",
    ]  # fmt: skip
    with log.open("wb") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
    activator = Activator(f"http://127.0.0.1:{port}", f"http://127.0.0.1:{metrics}", process, log)
    try:
        deadline = time.monotonic() + 30
        while True:
            if process.poll() is not None:
                raise AssertionError(f"the activator exited: {log.read_text()[-2000:]}")
            with contextlib.suppress(httpx2.TransportError):
                health = httpx2.get(f"{activator.metrics_url}/healthz", trust_env=False)
                if health.status_code == 200:
                    break
            if time.monotonic() > deadline:
                raise AssertionError(f"the activator never synced: {log.read_text()[-2000:]}")
            time.sleep(0.1)
        yield activator
    finally:
        terminate([process.pid], grace=10)
        process.wait()
