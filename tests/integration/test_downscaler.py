"""The downscaler on the real sim cluster with the real Prometheus and traffic simulator
that `gpuplane up` started (the operator runs with its ServiceAccount token).

Covers: idle -> ScaledDown with the ledger (annotation + status) and Events on the
Deployment and the policy; active traffic leaves it alone; no series -> Unknown and
untouched; wake restores exactly the original count; a manual scale while ScaledDown is
respected (ledger released, grace period); deleting the policy restores its targets;
dryRun never scales; a PromQL syntax error -> Ready=False with Prometheus's message and
no action; invalid policies are rejected by the API server; the operator's token cannot
delete a Deployment.
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import cast

import pytest
import yaml
from lightkube import Client
from lightkube.core.exceptions import ApiError
from lightkube.resources.apps_v1 import Deployment
from lightkube.resources.core_v1 import Pod
from lightkube.types import PatchType

from gpuplane.downscaler.kube_api import deployment_patch
from gpuplane.downscaler.resource import DownscalePolicy
from gpuplane.kube import connect
from gpuplane.shared.wake_annotation import wake_patch
from tests.integration.conftest import SimCluster
from tests.integration.downscaler_kit import (
    condition,
    deployment,
    events,
    gpu_signal,
    ledger,
    policy,
    replicas,
    scaled_down,
    set_traffic,
    target_status,
    wait_for,
)

pytestmark = pytest.mark.integration
CLUSTER = "gpuplane-it"


def idle_until_scaled_down(
    cluster: SimCluster, ns: str, count: int, **policy_overrides: str
) -> Client:
    """An idle Deployment 'llm' of ``count`` replicas under a policy, scaled to zero."""
    client = cluster.client
    client.create(deployment(ns, "llm", count))
    set_traffic(cluster.env, CLUSTER, ns, "llm", 0)
    client.create(policy(ns, **policy_overrides))
    wait_for("scale to zero", lambda: scaled_down(client, ns, "llm"), timeout=90)
    return client


def test_idle_deployment_is_scaled_down_with_its_ledger(sim_cluster: SimCluster, ns: str) -> None:
    client = idle_until_scaled_down(sim_cluster, ns, 3)
    assert ledger(client, ns, "llm") == "3"
    target = target_status(client, ns, "llm")
    assert target["originalReplicas"] == 3
    assert target["verdict"] == "Idle"
    assert target["lastAction"]["type"] == "ScaleDown"
    scale_events = wait_for("events", lambda: events(client, ns, "ScaleDown"))
    kinds = sorted(kind for kind, _ in scale_events)
    assert kinds == ["Deployment", "DownscalePolicy"]
    assert all(
        "requests=0 < 0.05" in message and "idleFor 4s" in message for _, message in scale_events
    )


def test_active_deployment_is_left_alone(sim_cluster: SimCluster, ns: str) -> None:
    client = sim_cluster.client
    client.create(deployment(ns, "busy", 2))
    set_traffic(sim_cluster.env, CLUSTER, ns, "busy", 5)
    client.create(policy(ns))
    wait_for("Active verdict", lambda: target_status(client, ns, "busy").get("verdict") == "Active")
    time.sleep(8)  # twice idleFor
    assert replicas(client, ns, "busy") == 2
    assert target_status(client, ns, "busy")["verdict"] == "Active"
    assert ledger(client, ns, "busy") is None


def test_no_series_is_unknown_and_never_scaled(sim_cluster: SimCluster, ns: str) -> None:
    client = sim_cluster.client
    client.create(deployment(ns, "silent", 2))  # no traffic configured: no series at all
    client.create(policy(ns))
    wait_for(
        "Unknown verdict", lambda: target_status(client, ns, "silent").get("verdict") == "Unknown"
    )
    time.sleep(8)
    assert replicas(client, ns, "silent") == 2
    assert "requests=unknown (no series)" in target_status(client, ns, "silent")["reason"]


def test_wake_restores_the_exact_original_count(sim_cluster: SimCluster, ns: str) -> None:
    client = idle_until_scaled_down(sim_cluster, ns, 4)
    started = time.monotonic()
    set_traffic(sim_cluster.env, CLUSTER, ns, "llm", 3)
    wait_for("restore", lambda: replicas(client, ns, "llm") == 4, timeout=30)
    assert time.monotonic() - started < 15  # scrape interval + rate window + interval
    wait_for("ledger cleared", lambda: ledger(client, ns, "llm") is None)
    # The status is patched at the end of the cycle, just after the scale.
    wait_for(
        "Restore in the status",
        lambda: target_status(client, ns, "llm").get("lastAction", {}).get("type") == "Restore",
        timeout=10,
    )
    assert any("wake" in message for _, message in events(client, ns, "Restore"))


def test_requests_held_by_the_activator_keep_an_idle_deployment_up(
    sim_cluster: SimCluster, ns: str
) -> None:
    """A woken service still starting has answered nothing, so its request signal reads
    idle; the activator holding its requests repeats its wake request (the annotation) every
    few seconds. While that goes on the real downscaler leaves the Deployment up, for three
    times idleFor; once it stops, the Deployment is scaled down as any idle one."""
    client = sim_cluster.client
    client.create(deployment(ns, "llm", 1))
    set_traffic(sim_cluster.env, CLUSTER, ns, "llm", 0)
    stop = threading.Event()

    def activator_holding() -> None:  # the activator's own write, every 2 s
        while not stop.is_set():
            patch = wake_patch(datetime.now(UTC))
            client.patch(Deployment, "llm", patch, namespace=ns, patch_type=PatchType.MERGE)
            stop.wait(2)

    holding = threading.Thread(target=activator_holding, daemon=True)
    holding.start()
    try:
        client.create(policy(ns))
        wait_for(
            "the held requests in the status",
            lambda: (
                "requests held by the activator"
                in target_status(client, ns, "llm").get("reason", "")
            ),
            timeout=30,
        )
        deadline = time.monotonic() + 12  # three times idleFor (4s)
        while time.monotonic() < deadline:
            assert replicas(client, ns, "llm") == 1
            time.sleep(0.5)
    finally:
        stop.set()
        holding.join(5)
    started = time.monotonic()
    wait_for("scale to zero once nothing is held", lambda: scaled_down(client, ns, "llm"), 60)
    # The last request is no longer held after 15 s, then idleFor: not before.
    assert time.monotonic() - started >= 15


def test_manual_scale_while_scaled_down_is_respected(sim_cluster: SimCluster, ns: str) -> None:
    client = idle_until_scaled_down(sim_cluster, ns, 3, gracePeriod="30s")
    client.patch(
        Deployment.Scale, "llm", {"spec": {"replicas": 2}}, namespace=ns, patch_type=PatchType.MERGE
    )
    wait_for("ledger released", lambda: ledger(client, ns, "llm") is None)
    target = wait_for(
        "Release",
        lambda: (
            (t := target_status(client, ns, "llm")).get("lastAction", {}).get("type") == "Release"
            and t
        ),
    )
    assert target["state"] == "Running"
    assert "protectedUntil" in target
    time.sleep(8)  # idle, but inside the restarted grace period
    assert replicas(client, ns, "llm") == 2


def test_deleting_the_policy_restores_its_targets(sim_cluster: SimCluster, ns: str) -> None:
    client = idle_until_scaled_down(sim_cluster, ns, 3)
    client.delete(DownscalePolicy, "idle", namespace=ns)

    def gone() -> bool:
        try:
            client.get(DownscalePolicy, "idle", namespace=ns)
        except ApiError as error:
            return error.status.code == 404
        return False

    wait_for("policy gone", gone, timeout=30)
    assert replicas(client, ns, "llm") == 3
    assert ledger(client, ns, "llm") is None


def test_dry_run_never_scales(sim_cluster: SimCluster, ns: str) -> None:
    client = sim_cluster.client
    client.create(deployment(ns, "llm", 2))
    set_traffic(sim_cluster.env, CLUSTER, ns, "llm", 0)
    client.create(policy(ns, dryRun=True))
    target = wait_for(
        "dry-run decision",
        lambda: (
            (t := target_status(client, ns, "llm")).get("lastAction", {}).get("type")
            == "DryRunScaleDown"
            and t
        ),
        timeout=60,
    )
    assert target["verdict"] == "Idle"
    assert target["state"] == "Running"
    assert replicas(client, ns, "llm") == 2
    assert ledger(client, ns, "llm") is None
    assert events(client, ns, "DryRunScaleDown")


def test_promql_syntax_error_sets_ready_false_and_does_nothing(
    sim_cluster: SimCluster, ns: str
) -> None:
    client = sim_cluster.client
    client.create(deployment(ns, "llm", 2))
    broken = [{"name": "requests", "query": "sum by (deployment) (rate(x[6s]", "idleBelow": 0.05}]
    client.create(policy(ns, signals=broken))
    ready = wait_for(
        "Ready=False", lambda: (c := condition(client, ns, "Ready")).get("status") == "False" and c
    )
    assert ready["reason"] == "QueryError"
    assert "requests:" in ready["message"] and "parse error" in ready["message"]
    time.sleep(6)
    assert replicas(client, ns, "llm") == 2


def test_a_policy_the_schema_passes_but_the_operator_cannot_use_is_ready_false(
    sim_cluster: SimCluster, ns: str
) -> None:
    """interval 0s and an idleFor of 375 days pass the CRD; the operator says why
    it cannot use them (Ready=False, InvalidPolicy) and keeps running."""
    client = sim_cluster.client
    client.create(deployment(ns, "llm", 2))
    client.create(policy(ns, name="zero", interval="0s", idleFor="0s"))
    client.create(policy(ns, name="huge", idleFor="9000h"))  # 375 days
    for name, field in (("zero", "spec.interval"), ("huge", "spec.idleFor")):
        ready = wait_for(
            f"{name} Ready=False",
            lambda n=name: (c := condition(client, ns, "Ready", n)).get("status") == "False" and c,
        )
        assert ready["reason"] == "InvalidPolicy"
        assert field in ready["message"]
    assert replicas(client, ns, "llm") == 2
    client.create(policy(ns, name="fine"))  # the operator still evaluates the next one
    wait_for("fine evaluated", lambda: condition(client, ns, "Ready", "fine").get("status"))


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"interval": "10m", "idleFor": "1m"}, "idleFor must be at least interval"),
        ({"interval": "soon"}, "spec.interval in body should match"),
        (
            {"signals": [{"name": "r", "query": "up", "idleBelow": -1}]},
            "greater than or equal to 0",
        ),
        ({"signals": []}, "should have at least 1 items"),
    ],
)
def test_invalid_policies_are_rejected_by_the_api_server(
    sim_cluster: SimCluster, ns: str, overrides: dict[str, object], message: str
) -> None:
    with pytest.raises(ApiError) as rejected:
        sim_cluster.client.create(policy(ns, **overrides))
    assert rejected.value.status.code == 422
    assert message in str(rejected.value.status.message)


def test_operator_token_cannot_delete_a_deployment(sim_cluster: SimCluster, ns: str) -> None:
    sim_cluster.client.create(deployment(ns, "llm", 1))
    operator = connect(sim_cluster.kubeconfig.parent / "downscaler.kubeconfig")
    with pytest.raises(ApiError) as denied:
        operator.delete(Deployment, "llm", namespace=ns)
    assert denied.value.status.code == 403
    # ...nor use the /scale subresource it no longer needs...
    with pytest.raises(ApiError) as no_scale:
        operator.patch(
            Deployment.Scale, "llm", {"spec": {"replicas": 1}}, namespace=ns,
            patch_type=PatchType.MERGE,
        )  # fmt: skip
    assert no_scale.value.status.code == 403

    # ...while its one write per action is allowed, and conditional on the resourceVersion
    def current_write() -> dict[str, object] | None:
        """The write on the version just read (the deployment controller may still be
        updating the new Deployment's status: then read again)."""
        live = operator.get(Deployment, "llm", namespace=ns)
        assert live.metadata is not None
        write = deployment_patch(str(live.metadata.resourceVersion), replicas=0, ledger=1)
        try:
            operator.patch(Deployment, "llm", write, namespace=ns, patch_type=PatchType.MERGE)
        except ApiError as error:
            assert error.status.code == 409
            return None
        return write

    write = wait_for("a write on the current version", current_write, timeout=30)
    with pytest.raises(ApiError) as stale:
        operator.patch(Deployment, "llm", write, namespace=ns, patch_type=PatchType.MERGE)
    assert stale.value.status.code == 409


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            {"spec": {"template": {"spec": {"containers": [{"name": "app", "image": "evil:1"}]}}}},
            "may change spec.replicas only",
        ),
        ({"spec": {"paused": True}}, "may change spec.replicas only"),
        ({"metadata": {"labels": {"stolen": "yes"}}}, "may not change labels"),
        ({"metadata": {"finalizers": ["example.com/block"]}}, "may not change labels"),
        ({"metadata": {"annotations": {"other": "x"}}}, "only its own annotations"),
    ],
)
def test_operator_token_may_change_replicas_and_its_annotations_only(
    sim_cluster: SimCluster, ns: str, change: dict[str, object], message: str
) -> None:
    """RBAC's "patch deployments" is narrowed by an admission policy: the operator's token
    cannot change an image (or anything but replicas and its own annotations)."""
    sim_cluster.client.create(deployment(ns, "guarded", 2))
    operator = connect(sim_cluster.kubeconfig.parent / "downscaler.kubeconfig")
    with pytest.raises(ApiError) as refused:
        operator.patch(Deployment, "guarded", change, namespace=ns, patch_type=PatchType.MERGE)
    assert refused.value.status.code in (403, 422), change
    assert message in str(refused.value.status.message)
    ledger = {"metadata": {"annotations": {"gpuplane.io/original-replicas": "2"}}}
    operator.patch(
        Deployment, "guarded", {**ledger, "spec": {"replicas": 0}}, namespace=ns,
        patch_type=PatchType.MERGE,
    )  # fmt: skip
    assert replicas(sim_cluster.client, ns, "guarded") == 0


def test_deploy_files_pass_pod_security_restricted(sim_cluster: SimCluster) -> None:
    """The operator's pod, server-side dry-run into gpuplane-system, which enforces Pod
    Security "restricted": admission accepts it, and rejects a privileged variant."""
    root = Path(__file__).resolve().parents[2]
    documents = yaml.safe_load_all((root / "deploy/downscaler/deployment.yaml").read_text())
    document = next(d for d in documents if d and d["kind"] == "Deployment")
    sim_cluster.client.create(cast(Deployment, Deployment.from_dict(document)), dry_run=True)
    template = document["spec"]["template"]
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "probe", "namespace": "gpuplane-system", **template["metadata"]},
        "spec": template["spec"],
    }
    sim_cluster.client.create(cast(Pod, Pod.from_dict(pod)), dry_run=True)
    pod["spec"]["containers"][0]["securityContext"] = {"privileged": True}
    with pytest.raises(ApiError) as rejected:
        sim_cluster.client.create(cast(Pod, Pod.from_dict(pod)), dry_run=True)
    assert rejected.value.status.code == 403
    assert 'violates PodSecurity "restricted' in str(rejected.value.status.message)


def test_gpu_signal_from_the_simulated_dcgm_series(sim_cluster: SimCluster, ns: str) -> None:
    """Both signals of the contract's example: requests and GPU utilisation (dcgm series
    mapped from pod to Deployment). Busy -> Active on both; quiet -> Idle -> zero."""
    client = sim_cluster.client
    client.create(deployment(ns, "llm", 1, gpus=1))
    set_traffic(sim_cluster.env, CLUSTER, ns, "llm", 3)
    requests = policy(ns).to_dict()["spec"]["signals"][0]
    client.create(policy(ns, signals=[requests, gpu_signal(ns)]))
    busy = wait_for(
        "Active on the GPU signal",
        lambda: (
            (t := target_status(client, ns, "llm")).get("verdict") == "Active"
            and "gpu >= 5" in t.get("reason", "")
            and t
        ),
        timeout=60,
    )
    # the status names the signals, not their live values (those are in metrics)
    assert busy["reason"].startswith("requests")
    set_traffic(sim_cluster.env, CLUSTER, ns, "llm", 0)
    wait_for("scale to zero", lambda: scaled_down(client, ns, "llm"), timeout=90)
    action = target_status(client, ns, "llm")["lastAction"]
    assert action["type"] == "ScaleDown"
    assert "gpu=1 < 5" in action["reason"] and "requests=0 < 0.05" in action["reason"]
