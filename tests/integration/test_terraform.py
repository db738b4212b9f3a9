"""Terraform, for real, on this machine, twice: with the host's terraform (or tofu) and
with OpenTofu built from its Go module (tools/tofu), the binary hosts without terraform
get. Each: ``fmt -check`` of both modules;
``init`` (offline: infra/cluster needs no provider) and ``validate`` of infra/cluster;
``apply`` with the sim backend, then ``gpuplane verify`` passes on its kubeconfig
output; a second plan shows no changes; ``destroy`` leaves no process, port or state.

Not run here: init/validate/apply of infra/platform, whose hashicorp/kubernetes >= 2.23
provider cannot be built offline on these machines (the Go module proxy serves only
v1.13.4 of it); see infra/README.md.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from gpuplane.backends.local.processes import running_pids
from gpuplane.backends.local.state import LocalState
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
    config = tmp_path / "terraformrc"
    config.write_text("")  # no CLI configuration: nothing from outside the repo
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


def test_infra_script_runs_the_whole_flow(tmp_path: Path) -> None:
    """`make infra-up` / `infra-down` (scripts/infra.sh) with a throwaway platform, state
    and module directory. infra/platform is applied where its provider can be had, else
    the script stops at it with exit 3 and says why; the cluster is up either way, and
    `down` removes it."""
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
        assert up.returncode in (0, 3), up.stdout + up.stderr
        if up.returncode == 3:
            assert "hashicorp/kubernetes provider is not available offline" in up.stderr
            assert "the cluster itself is up" in up.stderr
        status = run_cli(["-f", str(platform), "status", "-o", "json"], env)
        assert status.code == 0, status.stdout + status.stderr
        assert json.loads(status.stdout)["running"] is True
    finally:
        down = script("down")
    assert down.returncode == 0, down.stdout + down.stderr
    assert_cluster_gone(state, "gpuplane-infra")
    assert not (REPO / "infra" / "cluster" / "terraform.tfstate").exists()
