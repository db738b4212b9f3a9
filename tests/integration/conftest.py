"""One real sim cluster per test run, brought up and torn down through the CLI."""

from __future__ import annotations

import io
import os
import secrets
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from lightkube import Client
from lightkube.core.exceptions import ApiError
from lightkube.models.meta_v1 import ObjectMeta
from lightkube.resources.core_v1 import Namespace

from gpuplane.cli.main import main
from gpuplane.downscaler.resource import DownscalePolicy
from gpuplane.kube import connect

REPO = Path(__file__).resolve().parents[2]


@dataclass
class CliResult:
    code: int
    stdout: str
    stderr: str


@dataclass
class SimCluster:
    platform_file: Path
    env: dict[str, str]
    kubeconfig: Path
    client: Client

    def cli(self, *args: str) -> CliResult:
        return run_cli(["-f", str(self.platform_file), *args], self.env)


def run_cli(argv: list[str], env: dict[str, str]) -> CliResult:
    out, err = io.StringIO(), io.StringIO()
    code = main(argv, stdout=out, stderr=err, env=env)
    return CliResult(code, out.getvalue(), err.getvalue())


def write_platform(
    directory: Path, name: str, nodes: list[dict[str, object]] | None = None
) -> Path:
    """The repository's platform.yaml under another cluster name (and optionally nodes).
    Every ``runtime: auto`` is pinned to KWOK: the suite's clusters declare what runs them,
    so none depends on (or takes) this host's one kubelet node; the real-node tests
    declare their kubelet node themselves."""
    document = yaml.safe_load((REPO / "platform.yaml").read_text())
    document["metadata"]["name"] = name
    if nodes is not None:
        document["spec"]["nodes"] = nodes
    for node in document["spec"]["nodes"]:
        if node.get("runtime") == "auto":
            node["runtime"] = "kwok"
    file = directory / f"{name}.yaml"
    file.write_text(yaml.safe_dump(document, sort_keys=False))
    return file


@pytest.fixture(scope="session")
def state_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("gpuplane-state")


@pytest.fixture(scope="session")
def sim_env(state_root: Path) -> dict[str, str]:
    return {**os.environ, "GPUPLANE_STATE": str(state_root)}


@pytest.fixture(scope="session")
def sim_cluster(
    tmp_path_factory: pytest.TempPathFactory, sim_env: dict[str, str]
) -> Iterator[SimCluster]:
    platform_file = write_platform(tmp_path_factory.mktemp("platform"), "gpuplane-it")
    up = run_cli(["-f", str(platform_file), "up"], sim_env)
    assert up.code == 0, f"gpuplane up failed:\n{up.stdout}\n{up.stderr}"
    kubeconfig = Path(sim_env["GPUPLANE_STATE"]) / "gpuplane-it" / "kubeconfig"
    cluster = SimCluster(platform_file, sim_env, kubeconfig, connect(kubeconfig))
    yield cluster
    # `down` removes the cluster's directory: keep the services' logs for a post-mortem.
    logs = tmp_path_factory.mktemp("service-logs")
    for log in sorted((Path(sim_env["GPUPLANE_STATE"]) / "gpuplane-it").rglob("*.log")):
        shutil.copy2(log, logs / log.name)
    down = cluster.cli("down")
    assert down.code == 0, down.stderr


def delete_namespace(client: Client, name: str, timeout: float = 120.0) -> None:
    """Delete ``name`` and wait until it is gone, so a later test that creates it again
    never meets it Terminating."""
    try:
        client.delete(Namespace, name)
    except ApiError as error:
        if error.status.code != 404:
            raise
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            client.get(Namespace, name)
        except ApiError as error:
            if error.status.code == 404:
                return
            raise
        time.sleep(0.5)
    raise AssertionError(f"namespace {name} still there after {timeout:.0f}s")


@pytest.fixture
def ns(sim_cluster: SimCluster) -> Iterator[str]:
    """A scratch namespace on the session cluster; its policies go first, then it."""
    name = f"t-{secrets.token_hex(3)}"
    sim_cluster.client.create(Namespace(metadata=ObjectMeta(name=name)))
    yield name
    for item in sim_cluster.client.list(DownscalePolicy, namespace=name):
        if item.metadata and item.metadata.name:
            sim_cluster.client.delete(DownscalePolicy, item.metadata.name, namespace=name)
    sim_cluster.client.delete(Namespace, name)
