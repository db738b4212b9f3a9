"""GitOps against the real thing: Argo CD v2.14.21 (built from its module) syncing a local
cluster of its own from a git repository served on loopback, with the real downscaler
and Prometheus beside it. The repository is a clone of this checkout's HEAD; the tests
commit to it as a user would.
"""

from __future__ import annotations

import itertools
import json
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from lightkube.resources.apiextensions_v1 import CustomResourceDefinition
from lightkube.resources.apps_v1 import Deployment
from lightkube.resources.core_v1 import ConfigMap, Service
from lightkube.types import PatchType

from gpuplane.backends.local.gitops.stack import Application
from gpuplane.downscaler.resource import DownscalePolicy
from gpuplane.kube import connect
from tests.integration.conftest import REPO, SimCluster, run_cli, write_platform

ORIGINAL_REPLICAS = "gpuplane.io/original-replicas"
WAKE = "gpuplane.io/wake-requested"


GIT = shutil.which("git") or "git"


def git(repo: Path, *args: str) -> str:
    done = subprocess.run(
        [GIT, "-C", str(repo), *args], capture_output=True, text=True, check=True, timeout=60
    )
    return done.stdout.strip()


def commit(repo: Path, message: str) -> str:
    git(repo, "add", "-A")
    git(repo, "-c", "user.name=test", "-c", "user.email=test@localhost", "commit", "-qm", message)
    return git(repo, "rev-parse", "HEAD")


def wait_for(what: str, check: Callable[[], bool], timeout: float = 120.0) -> float:
    """Seconds until ``check()`` holds; fails naming ``what`` after ``timeout``."""
    start = time.monotonic()
    while not check():
        if time.monotonic() - start > timeout:
            raise AssertionError(f"{what}: not after {timeout:.0f}s")
        time.sleep(0.5)
    return time.monotonic() - start


@pytest.fixture(scope="module")
def gitops(
    tmp_path_factory: pytest.TempPathFactory, sim_env: dict[str, str]
) -> Iterator[tuple[SimCluster, Path]]:
    """A KWOK cluster of its own (Argo CD prunes and heals: it must not touch the shared
    one), gitops up from a clone of this checkout."""
    base = tmp_path_factory.mktemp("gitops")
    repo = base / "repo"
    subprocess.run([GIT, "clone", "-q", str(REPO), str(repo)], check=True, timeout=120)
    platform_file = write_platform(base, "gitops-it")
    up = run_cli(["-f", str(platform_file), "up"], sim_env)
    assert up.code == 0, up.stderr
    kubeconfig = Path(sim_env["GPUPLANE_STATE"]) / "gitops-it" / "kubeconfig"
    cluster = SimCluster(platform_file, sim_env, kubeconfig, connect(kubeconfig))
    started = cluster.cli("gitops", "up", "--repo", str(repo), "--wait", "240")
    assert started.code == 0, started.stdout + started.stderr
    yield cluster, repo
    down = cluster.cli("down")
    assert down.code == 0, down.stderr


def application(cluster: SimCluster, name: str) -> dict[str, Any]:
    return dict(cluster.client.get(Application, name, namespace="argocd"))


def synced_at(cluster: SimCluster, name: str, revision: str) -> bool:
    status = application(cluster, name).get("status") or {}
    sync = status.get("sync") or {}
    return bool(sync.get("status") == "Synced" and sync.get("revision") == revision)


def status_json(cluster: SimCluster) -> dict[str, Any]:
    result = cluster.cli("gitops", "status", "-o", "json")
    document: dict[str, Any] = json.loads(result.stdout)
    assert result.code == (0 if document["converged"] else 1)
    return document


def test_every_local_application_is_synced_and_healthy_and_remote_ones_say_offline(
    gitops: tuple[SimCluster, Path],
) -> None:
    cluster, _ = gitops
    document = status_json(cluster)
    assert document["converged"] is True
    rows = {row["name"]: row for row in document["applications"]}
    local = ("namespaces", "platform-crds", "downscaler", "observability", "demo", "inference")
    for name in (*local, "platform-root", "platform-remote"):
        assert rows[name]["green"], rows[name]
    for name, url in (
        ("kube-prometheus-stack", "https://prometheus-community.github.io/helm-charts"),
        ("dcgm-exporter", "https://nvidia.github.io/dcgm-exporter/helm-charts"),
        ("gpu-enablement", "https://nvidia.github.io/k8s-device-plugin"),
    ):
        assert not rows[name]["green"], rows[name]
        assert rows[name]["note"] == f"source unreachable offline ({url})"
    # KWOK pods: green, and said to be simulated.
    assert rows["downscaler"]["note"].startswith("simulated")
    assert document["repository"].startswith("git://127.0.0.1:")
    assert all(component["running"] for component in document["components"])
    table = cluster.cli("gitops", "status")
    assert "source unreachable offline (https://prometheus-community" in table.stdout


def test_sync_waves_create_each_wave_after_the_last_one_is_healthy(
    gitops: tuple[SimCluster, Path],
) -> None:
    """The root creates namespaces (-2), our CRDs (-1), the operator (2), then the
    workloads and their DownscalePolicies (3), each wave once the one before is Synced and
    Healthy (argocd-cm's Application health): the demo's Application was created after
    the downscaler's sync had finished."""
    cluster, _ = gitops

    def created(name: str) -> datetime:
        return datetime.fromisoformat(application(cluster, name)["metadata"]["creationTimestamp"])

    order = ["namespaces", "platform-crds", "downscaler", "demo"]
    for earlier, later in itertools.pairwise(order):
        assert created(earlier) <= created(later), (earlier, later)
    operator = application(cluster, "downscaler")["status"]["operationState"]
    assert operator["phase"] == "Succeeded"
    assert datetime.fromisoformat(operator["finishedAt"]) <= created("demo")
    crd = cluster.client.get(CustomResourceDefinition, "downscalepolicies.gpuplane.io")
    policy = cluster.client.get(DownscalePolicy, "inference-idle", namespace="ml")
    assert crd.metadata and policy.metadata
    assert crd.metadata.creationTimestamp <= policy.metadata.creationTimestamp


def test_a_committed_policy_change_reaches_the_cluster(gitops: tuple[SimCluster, Path]) -> None:
    cluster, repo = gitops
    path = repo / "apps/demo/policy.yaml"
    document = yaml.safe_load(path.read_text())
    document["spec"]["idleFor"] = "25s"
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    revision = commit(repo, "policy: idleFor 25s")

    def applied() -> bool:
        live = cluster.client.get(DownscalePolicy, "inference-idle", namespace="ml")
        return bool(live.spec and live.spec.get("idleFor") == "25s")

    wait_for("the new idleFor in the cluster", applied, timeout=90)
    wait_for("demo synced at the commit", lambda: synced_at(cluster, "demo", revision), 60)


def test_a_hand_edit_is_healed(gitops: tuple[SimCluster, Path]) -> None:
    cluster, _ = gitops
    service = cluster.client.get(Service, "inference", namespace="ml")
    assert service.metadata and service.metadata.labels
    wanted = service.metadata.labels["app.kubernetes.io/part-of"]
    patch = {"metadata": {"labels": {"app.kubernetes.io/part-of": "edited-by-hand"}}}
    cluster.client.patch(Service, "inference", patch, namespace="ml", patch_type=PatchType.MERGE)

    def healed() -> bool:
        live = cluster.client.get(Service, "inference", namespace="ml")
        labels = (live.metadata.labels if live.metadata else None) or {}
        return labels.get("app.kubernetes.io/part-of") == wanted

    wait_for("self-heal of the Service's label", healed, timeout=90)


def test_a_manifest_deleted_from_git_is_pruned(gitops: tuple[SimCluster, Path]) -> None:
    cluster, repo = gitops
    (repo / "apps/demo/wake-policy.yaml").unlink()
    revision = commit(repo, "drop the wake policy")

    def pruned() -> bool:
        names = [p.metadata.name for p in cluster.client.list(DownscalePolicy, namespace="ml")]
        return "inference-wake" not in names

    wait_for("inference-wake pruned", pruned, timeout=90)
    wait_for("demo synced at the commit", lambda: synced_at(cluster, "demo", revision), 60)


def test_a_broken_manifest_reports_an_error_and_deletes_nothing(
    gitops: tuple[SimCluster, Path],
) -> None:
    cluster, repo = gitops
    path = repo / "apps/demo/inference.yaml"
    good = path.read_text()
    before = {d.metadata.name for d in cluster.client.list(Deployment, namespace="ml")}
    path.write_text(good + "\n---\nkind: Deployment\nspec: [this is not a manifest\n")
    commit(repo, "a broken manifest")

    def reported() -> bool:
        rows = {row["name"]: row for row in status_json(cluster)["applications"]}
        return "inference.yaml" in rows["demo"]["message"] or "yaml" in rows["demo"]["message"]

    wait_for("the error on demo", reported, timeout=90)
    document = status_json(cluster)
    assert document["converged"] is False
    after = {d.metadata.name for d in cluster.client.list(Deployment, namespace="ml")}
    assert before <= after
    path.write_text(good)
    revision = commit(repo, "the manifest mended")
    wait_for("demo synced again", lambda: synced_at(cluster, "demo", revision), 90)


def test_argocd_never_fights_the_downscaler(gitops: tuple[SimCluster, Path]) -> None:
    """The downscaler scales an idle Deployment to zero; across three reconciliations
    Argo CD leaves it at zero with its ledger annotation, and the app stays Synced; the
    activator's wake annotation survives too, and the wake restores the count."""
    cluster, _ = gitops
    traffic = cluster.cli("sim", "traffic", "set", "ml/llm-inference", "0")
    assert traffic.code == 0, traffic.stderr

    def at_zero() -> bool:
        live = cluster.client.get(Deployment, "llm-inference", namespace="ml")
        annotations = (live.metadata.annotations if live.metadata else None) or {}
        return bool(live.spec and live.spec.replicas == 0 and ORIGINAL_REPLICAS in annotations)

    wait_for("llm-inference scaled to zero by the downscaler", at_zero, timeout=150)
    # Three reconciliations after the one seen first, at zero all along.
    seen: set[str] = set()
    deadline = time.monotonic() + 90
    while len(seen) < 4:
        seen.add(str(application(cluster, "demo")["status"]["reconciledAt"]))
        assert at_zero(), "Argo CD undid the scale to zero"
        assert time.monotonic() < deadline, f"only {len(seen)} reconciliations seen"
        time.sleep(0.5)
    status = application(cluster, "demo")["status"]
    assert status["sync"]["status"] == "Synced", status["sync"]
    # The activator's wake annotation (its whole write access): Argo CD keeps it, and
    # the downscaler restores the recorded count.
    wake = {"metadata": {"annotations": {WAKE: datetime.now().astimezone().isoformat()}}}
    cluster.client.patch(
        Deployment, "llm-inference", wake, namespace="ml", patch_type=PatchType.MERGE
    )

    def restored() -> bool:
        live = cluster.client.get(Deployment, "llm-inference", namespace="ml")
        return bool(live.spec and live.spec.replicas == 1)

    wait_for("the wake restores llm-inference", restored, timeout=60)
    assert application(cluster, "demo")["status"]["sync"]["status"] == "Synced"


def test_the_controller_killed_mid_sync_restarts_and_converges(
    gitops: tuple[SimCluster, Path],
) -> None:
    cluster, repo = gitops
    path = repo / "apps/demo/policy.yaml"
    document = yaml.safe_load(path.read_text())
    document["spec"]["gracePeriod"] = "12s"
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    revision = commit(repo, "policy: gracePeriod 12s")
    sync = cluster.cli("gitops", "sync", "demo", "--wait", "0")
    assert sync.code in (0, 1), sync.stderr
    pid_file = Path(cluster.env["GPUPLANE_STATE"]) / "gitops-it" / "gitops" / "controller.pid"
    os.kill(int(pid_file.read_text().split()[0]), signal.SIGKILL)
    down = status_json(cluster)
    assert not next(c for c in down["components"] if c["name"] == "argocd controller")["running"]
    again = cluster.cli("gitops", "up", "--repo", str(repo), "--wait", "180")
    assert again.code == 0, again.stdout + again.stderr
    assert "controller started" in again.stderr
    wait_for("demo synced at the commit", lambda: synced_at(cluster, "demo", revision), 90)
    live = cluster.client.get(DownscalePolicy, "inference-idle", namespace="ml")
    assert live.spec and live.spec["gracePeriod"] == "12s"


def test_bad_repositories_are_refused_with_their_name(
    gitops: tuple[SimCluster, Path], tmp_path: Path
) -> None:
    cluster, _ = gitops
    missing = cluster.cli("gitops", "up", "--repo", str(tmp_path / "nowhere"))
    assert missing.code == 2
    assert "nowhere: no such directory" in missing.stderr
    empty = tmp_path / "empty"
    empty.mkdir()
    subprocess.run([GIT, "init", "-q", str(empty)], check=True)
    no_commit = cluster.cli("gitops", "up", "--repo", str(empty))
    assert no_commit.code == 2
    assert "not a git repository with a commit" in no_commit.stderr
    unknown = cluster.cli("gitops", "sync", "no-such-app", "--wait", "0")
    assert unknown.code == 2
    assert "no Application 'no-such-app'" in unknown.stderr


def test_down_leaves_no_process_no_redis_data_no_crd(gitops: tuple[SimCluster, Path]) -> None:
    cluster, _ = gitops
    directory = Path(cluster.env["GPUPLANE_STATE"]) / "gitops-it" / "gitops"
    pids = [int(p.read_text().split()[0]) for p in directory.glob("*.pid")]
    assert len(pids) == 4
    down = cluster.cli("gitops", "down")
    assert down.code == 0, down.stderr
    for pid in pids:
        assert (
            not Path(f"/proc/{pid}").exists() or "zombie" in Path(f"/proc/{pid}/status").read_text()
        )
    assert not directory.exists()
    names = {crd.metadata.name for crd in cluster.client.list(CustomResourceDefinition)}
    assert not names & {"applications.argoproj.io", "appprojects.argoproj.io"}
    # What Argo CD synced stays: down removes Argo CD, not the platform.
    assert cluster.client.get(ConfigMap, "kube-root-ca.crt", namespace="ml")
    assert cluster.client.get(Deployment, "inference-cpu", namespace="ml")
    status = cluster.cli("gitops", "status")
    assert status.code == 1
