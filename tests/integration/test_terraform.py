"""Terraform, for real, on this machine, twice: with the host's terraform (or tofu) and
with OpenTofu built from its Go module (tools/tofu), the binary hosts without terraform
get. Each: ``fmt -check`` of both modules;
``init`` (offline: infra/cluster needs no provider) and ``validate`` of infra/cluster;
``apply`` with the sim backend, then ``gpuplane verify`` passes on its kubeconfig
output; a second plan shows no changes; ``destroy`` leaves no process, port or state.

Then infra/platform on the gavinbunney/kubectl provider built here (a filesystem
mirror, so ``init`` is offline): role labels on the Nodes, namespaces, RuntimeClass and the
device plugin DaemonSet placed on the gpu node only; ``gpuplane verify`` passes; a second
plan is empty; a label removed by hand comes back; ``destroy`` removes what the module made
and leaves every Node. A wrong kubeconfig fails with the provider's error.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from lightkube import Client
from lightkube.core.exceptions import ApiError
from lightkube.resources.apps_v1 import DaemonSet
from lightkube.resources.core_v1 import Namespace, Node, Pod
from lightkube.resources.node_v1 import RuntimeClass
from lightkube.types import PatchType

from gpuplane.backends.local.processes import running_pids
from gpuplane.backends.local.state import LocalState
from gpuplane.kube import connect
from gpuplane.toolchain import read_pins
from tests.integration.conftest import REPO, run_cli, write_platform

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module", params=["host", "opentofu"])
def binary(request: pytest.FixtureRequest) -> str:
    """What ``gpuplane toolchain terraform`` chooses, or the OpenTofu built here."""
    flags = ["--opentofu"] if request.param == "opentofu" else []
    chosen = run_cli(["toolchain", "terraform", *flags], dict(os.environ))
    assert chosen.code == 0, chosen.stderr
    path = chosen.stdout.strip()
    version = subprocess.run(
        [path, "version"], capture_output=True, text=True, timeout=60, check=False
    )
    assert version.returncode == 0, version.stderr
    if request.param == "opentofu":
        assert f"OpenTofu {read_pins().tofu}\n" in version.stdout, version.stdout
    return path


def terraform(
    binary: str, args: list[str], cwd: Path, env: dict[str, str]
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [binary, *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


@pytest.fixture
def tf_env(tmp_path: Path) -> dict[str, str]:
    """The CLI configuration scripts/infra.sh writes: providers from the mirror only."""
    mirror = run_cli(["toolchain", "terraform-mirror"], dict(os.environ))
    assert mirror.code == 0, mirror.stderr
    config = tmp_path / "terraformrc"
    config.write_text(
        "provider_installation {\n"
        f'  filesystem_mirror {{\n    path = "{mirror.stdout.strip()}"\n'
        '    include = ["*/*/*"]\n  }\n'
        '  direct {\n    exclude = ["*/*/*"]\n  }\n}\n'
    )
    return {
        **os.environ,
        "TF_CLI_CONFIG_FILE": str(config),
        "TF_IN_AUTOMATION": "1",
        "CHECKPOINT_DISABLE": "1",
    }


def assert_cluster_gone(state: Path, name: str) -> None:
    """No state directory and no process of the cluster left."""
    sim = LocalState(state, name)
    assert not sim.directory.exists()
    assert running_pids(sim) == []


def test_modules_are_formatted(binary: str, tf_env: dict[str, str]) -> None:
    result = terraform(binary, ["fmt", "-check", "-recursive", "-diff", "infra"], REPO, tf_env)
    assert result.returncode == 0, result.stdout + result.stderr


def test_cluster_module_applies_verifies_and_destroys(
    binary: str, tmp_path: Path, tf_env: dict[str, str]
) -> None:
    module = tmp_path / "cluster"
    shutil.copytree(REPO / "infra" / "cluster", module)
    platform = write_platform(tmp_path, "gpuplane-tf")
    state = tmp_path / "state"
    variables = [
        f"-var=platform_file={platform}",
        f"-var=gpuplane_bin={REPO / '.venv' / 'bin' / 'gpuplane'}",
        f"-var=state_dir={state}",
    ]

    def tf(*args: str) -> subprocess.CompletedProcess[str]:
        return terraform(binary, [*args, "-input=false", "-no-color"], module, tf_env)

    init = tf("init")
    assert init.returncode == 0, init.stderr
    validate = terraform(binary, ["validate", "-no-color"], module, tf_env)
    assert validate.returncode == 0, validate.stderr
    try:
        apply = tf("apply", "-auto-approve", *variables)
        assert apply.returncode == 0, apply.stdout + apply.stderr
        outputs = json.loads(terraform(binary, ["output", "-json"], module, tf_env).stdout)
        kubeconfig = Path(outputs["kubeconfig_path"]["value"])
        assert kubeconfig.is_file() and (kubeconfig.stat().st_mode & 0o777) == 0o600
        assert outputs["node_roles"]["value"]["agent-2"] == "gpu"

        verify = run_cli(
            ["-f", str(platform), "verify", "--kubeconfig", str(kubeconfig)],
            {**os.environ, "GPUPLANE_STATE": str(state)},
        )
        assert verify.code == 0, verify.stdout + verify.stderr

        plan = tf("plan", "-detailed-exitcode", *variables)
        assert plan.returncode == 0, "a second plan must show no changes:\n" + plan.stdout
    finally:
        destroy = tf("destroy", "-auto-approve", *variables)
    assert destroy.returncode == 0, destroy.stdout + destroy.stderr
    assert_cluster_gone(state, "gpuplane-tf")


def node_labels(client: Client) -> dict[str, dict[str, str]]:
    return {
        node.metadata.name: dict(node.metadata.labels or {})
        for node in client.list(Node)
        if node.metadata is not None and node.metadata.name is not None
    }


def test_platform_module_applies_for_real(
    binary: str, tmp_path: Path, tf_env: dict[str, str]
) -> None:
    cluster, module = tmp_path / "cluster", tmp_path / "platform"
    shutil.copytree(REPO / "infra" / "cluster", cluster)
    shutil.copytree(REPO / "infra" / "platform", module)
    platform = write_platform(tmp_path, "gpuplane-tfp")
    state = tmp_path / "state"
    cluster_vars = [
        f"-var=platform_file={platform}",
        f"-var=gpuplane_bin={REPO / '.venv' / 'bin' / 'gpuplane'}",
        f"-var=state_dir={state}",
    ]

    def tf(where: Path, *args: str) -> subprocess.CompletedProcess[str]:
        return terraform(binary, [*args, "-input=false", "-no-color"], where, tf_env)

    assert tf(cluster, "init").returncode == 0
    try:
        up = tf(cluster, "apply", "-auto-approve", *cluster_vars)
        assert up.returncode == 0, up.stdout + up.stderr
        outputs = json.loads(terraform(binary, ["output", "-json"], cluster, tf_env).stdout)
        kubeconfig = Path(outputs["kubeconfig_path"]["value"])
        platform_vars = [
            f"-var=kubeconfig_path={kubeconfig}",
            f"-var=platform_file={platform}",
            f"-var=gpu_enablement_dir={REPO / 'apps' / 'gpu-enablement'}",
        ]
        init = tf(module, "init")
        assert init.returncode == 0, init.stdout + init.stderr
        assert "gavinbunney/kubectl" in init.stdout
        validate = terraform(binary, ["validate", "-no-color"], module, tf_env)
        assert validate.returncode == 0, validate.stdout + validate.stderr
        _check_platform_module(tf, PlatformRun(module, platform, kubeconfig, state, platform_vars))
    finally:
        destroy = tf(cluster, "destroy", "-auto-approve", *cluster_vars)
    assert destroy.returncode == 0, destroy.stdout + destroy.stderr
    assert_cluster_gone(state, "gpuplane-tfp")


@dataclass(frozen=True)
class PlatformRun:
    module: Path
    platform: Path
    kubeconfig: Path
    state: Path
    variables: list[str]


def _check_platform_module(tf: Any, run: PlatformRun) -> None:
    module, platform, kubeconfig, state, variables = (
        run.module, run.platform, run.kubeconfig, run.state, run.variables
    )  # fmt: skip
    client = connect(kubeconfig)
    before = set(node_labels(client))
    # `gpuplane up` labelled the nodes already: take one away, so the apply must set it.
    remove_gpu_role(client)
    apply = tf(module, "apply", "-auto-approve", *variables)
    assert apply.returncode == 0, apply.stdout + apply.stderr
    labels = node_labels(client)
    assert labels["agent-2"]["node-role.kubernetes.io/gpu"] == "true"
    assert labels["agent-1"]["node-role.kubernetes.io/infra"] == "true"
    for name, level in (("infra", "baseline"), ("apps", "restricted")):
        namespace = client.get(Namespace, name)
        assert namespace.metadata is not None and namespace.metadata.labels is not None
        assert namespace.metadata.labels["pod-security.kubernetes.io/enforce"] == level
    client.get(RuntimeClass, "nvidia")
    placed = wait_for_pods_on(client, "gpu-operator-resources")
    assert placed == {"agent-2"}, f"device plugin pods on {placed}, not the gpu node only"
    env = {**os.environ, "GPUPLANE_STATE": str(state)}
    verify = run_cli(["-f", str(platform), "verify", "--kubeconfig", str(kubeconfig)], env)
    assert verify.code == 0, verify.stdout + verify.stderr

    plan = tf(module, "plan", "-detailed-exitcode", *variables)
    assert plan.returncode == 0, "a second plan must show no changes:\n" + plan.stdout
    remove_gpu_role(client)
    drift = tf(module, "plan", "-detailed-exitcode", *variables)
    assert drift.returncode == 2, "a label removed by hand must show in the plan:\n" + drift.stdout
    again = tf(module, "apply", "-auto-approve", *variables)
    assert again.returncode == 0, again.stdout + again.stderr
    assert node_labels(client)["agent-2"]["node-role.kubernetes.io/gpu"] == "true"

    wrong = [*variables[1:], f"-var=kubeconfig_path={module / 'main.tf'}"]
    broken = tf(module, "plan", *wrong)
    assert broken.returncode != 0 and broken.stderr.strip(), broken.stdout
    down = kubeconfig.parent / "down.kubeconfig"  # the same cluster, its server gone
    down.write_text(re.sub(r"https://127\.0\.0\.1:\d+", f"https://127.0.0.1:{free_port()}",
                           kubeconfig.read_text()))  # fmt: skip
    down.chmod(0o600)
    unreachable = tf(module, "plan", *variables[1:], f"-var=kubeconfig_path={down}")
    assert unreachable.returncode != 0, unreachable.stdout
    assert "connection refused" in unreachable.stderr, unreachable.stderr

    destroy = tf(module, "destroy", "-auto-approve", *variables)
    assert destroy.returncode == 0, destroy.stdout + destroy.stderr
    assert set(node_labels(client)) == before  # every Node stays
    for kind, name in ((RuntimeClass, "nvidia"), (DaemonSet, "nvidia-device-plugin")):
        with pytest.raises(ApiError):
            client.get(kind, name, namespace="gpu-operator-resources")
    for name in ("infra", "apps", "gpu-workloads"):
        assert gone_or_terminating(client, name), name


def remove_gpu_role(client: Client) -> None:
    """A label removed by hand (as a user or a broken controller would)."""
    client.patch(
        Node, "agent-2", {"metadata": {"labels": {"node-role.kubernetes.io/gpu": None}}},
        patch_type=PatchType.MERGE,
    )  # fmt: skip


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])  # closed again: nothing listens there


def wait_for_pods_on(client: Client, namespace: str, timeout: float = 90) -> set[str]:
    """The nodes the device plugin DaemonSet's pods were placed on, once it placed any."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        pods = list(client.list(Pod, namespace=namespace))
        nodes = {pod.spec.nodeName for pod in pods if pod.spec and pod.spec.nodeName}
        if nodes:
            return {str(node) for node in nodes}
        time.sleep(1)
    return set()


def gone_or_terminating(client: Client, name: str) -> bool:
    try:
        namespace = client.get(Namespace, name)
    except ApiError:
        return True
    return namespace.metadata is not None and namespace.metadata.deletionTimestamp is not None


def test_infra_script_runs_the_whole_flow(tmp_path: Path) -> None:
    """`make infra-up` / `infra-down` (scripts/infra.sh) with a throwaway platform, state
    and module directory: both modules apply (the provider from the toolchain's mirror),
    and `down` removes them and the cluster."""
    platform = write_platform(tmp_path, "gpuplane-infra")
    state = tmp_path / "state"
    env = {
        **os.environ,
        "GPUPLANE_PLATFORM_FILE": str(platform),
        "GPUPLANE_STATE": str(state),
        "GPUPLANE_INFRA_DIR": str(tmp_path / "infra"),
    }

    def script(action: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(REPO / "scripts" / "infra.sh"), action],
            env=env, capture_output=True, text=True, timeout=600, check=False,
        )  # fmt: skip

    try:
        up = script("up")
        assert up.returncode == 0, up.stdout + up.stderr
        assert "kubectl_manifest.node_labels" in up.stdout
        status = run_cli(["-f", str(platform), "status", "-o", "json"], env)
        assert status.code == 0, status.stdout + status.stderr
        assert json.loads(status.stdout)["running"] is True
    finally:
        down = script("down")
    assert down.returncode == 0, down.stdout + down.stderr
    assert_cluster_gone(state, "gpuplane-infra")
    assert not (REPO / "infra" / "cluster" / "terraform.tfstate").exists()
