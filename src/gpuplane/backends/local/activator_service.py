"""The activator beside the local cluster: a supervised host process, as the downscaler is,
with its own least-privilege token (``deploy/activator/rbac.yaml``), loopback listeners
and a Prometheus scrape target. It sends to pods' own addresses (``endpoints:PORT``
upstreams): kubelet nodes' pods are reachable from the host over the CNI bridge, and no
kube-proxy runs. ``down`` stops it with the other services."""

from __future__ import annotations

import time
from typing import Any

import httpx2
import yaml
from lightkube import Client

from gpuplane.backends.base import ActivatorAddress
from gpuplane.backends.local.services import ACTIVATOR, Services, free_port, python_service
from gpuplane.backends.local.state import LocalState
from gpuplane.backends.local.tokens import mint_token
from gpuplane.errors import OperationError
from gpuplane.kube.apply import apply_files
from gpuplane.kube.files import user_kubeconfig, write_private
from gpuplane.toolchain import repo_root

ACTIVATOR_RBAC = "deploy/activator/rbac.yaml"
ACTIVATOR_NAMESPACE = "gpuplane-system"
ACTIVATOR_ACCOUNT = "gpuplane-activator"


def start_activator(
    state: LocalState,
    client: Client,
    backends: list[dict[str, Any]],
    limits: dict[str, float],
    *,
    timeout: float = 30.0,
) -> ActivatorAddress:
    """(Re)start the activator for ``backends`` (routes-file entries) and wait until it has
    synced its EndpointSlices; Prometheus scrapes it from then on."""
    services = Services(state)
    stop_activator(state)
    apply_files(client, [repo_root() / ACTIVATOR_RBAC])
    token = mint_token(client, ACTIVATOR_NAMESPACE, ACTIVATOR_ACCOUNT)
    kubeconfig = state.directory / "activator.kubeconfig"
    identity = user_kubeconfig(state.kubeconfig, ACTIVATOR_ACCOUNT, {"token": token})
    write_private(kubeconfig, identity)
    routes = services.directory / "activator-routes.yaml"
    routes.parent.mkdir(parents=True, exist_ok=True)
    routes.write_text(yaml.safe_dump({"backends": backends, "limits": limits}, sort_keys=False))
    port, metrics = free_port(), free_port()
    services.spawn(
        ACTIVATOR,
        [
            *python_service(), "gpuplane.activator.main",
            "--config", str(routes),
            "--kubeconfig", str(kubeconfig),
            "--listen", f"127.0.0.1:{port}",
            "--metrics-address", f"127.0.0.1:{metrics}",
        ],
    )  # fmt: skip
    address = ActivatorAddress(f"http://127.0.0.1:{port}", f"http://127.0.0.1:{metrics}")
    _wait_synced(services, address, timeout)
    services.add_scrape_target(ACTIVATOR, f"127.0.0.1:{metrics}", {})
    return address


def stop_activator(state: LocalState) -> None:
    services = Services(state)
    services.remove_scrape_target(ACTIVATOR)
    services.stop((ACTIVATOR,), grace=10.0)


def _wait_synced(services: Services, address: ActivatorAddress, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    with httpx2.Client(timeout=2.0, trust_env=False) as http:
        while True:
            if not services.running(ACTIVATOR):
                raise OperationError(
                    f"the activator exited at start; see {services.log_file(ACTIVATOR)}"
                )
            try:
                # 200 once every backend's EndpointSlices are listed (503 before).
                if http.get(f"{address.metrics_url}/healthz").status_code == 200:
                    return
            except httpx2.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise OperationError(
                    f"the activator did not sync within {timeout:.0f}s; "
                    f"see {services.log_file(ACTIVATOR)}"
                )
            time.sleep(0.1)
