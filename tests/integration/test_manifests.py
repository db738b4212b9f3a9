"""The charts and every manifest under gitops/ and apps/, for real: helm (built from its
Go module) renders and lints the charts, deploy/downscaler matches the chart, and
kubectl applies everything with --dry-run=server to the sim cluster, with Argo CD's and
the Prometheus operator's CRDs installed from the pinned upstream modules (tools/crds).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from gpuplane.backends.local.gitops.in_cluster_downscaler import GatewayPorts, downscaler_values
from gpuplane.errors import OperationError
from gpuplane.toolchain import tools_dir
from gpuplane.toolchain.crds import upstream_crd_files
from tests.integration.conftest import REPO, SimCluster
from tests.integration.manifest_kit import binary, helm_template, kubectl, run

RESTRICTED_NAMESPACES = ("gpuplane-system", "ml", "infra", "apps", "gpu-workloads")


def documents(text: str) -> list[dict[str, Any]]:
    return [document for document in yaml.safe_load_all(text) if document]


def manifest_files() -> list[Path]:
    """Every Kubernetes manifest of gitops/ and apps/ (Helm values files and the
    templates of gitops/apps, a chart, are not: platform_applications renders those)."""
    found = []
    for root in ("gitops", "apps"):
        for path in sorted((REPO / root).rglob("*.yaml")):
            chart_file = path.name == "Chart.yaml" or "templates" in path.parts
            if "values" not in path.name and not chart_file:
                found.append(path)
    return found


def platform_applications(env: dict[str, str], *sets: str) -> dict[str, dict[str, Any]]:
    """The Applications gitops/apps renders (the root Application's chart), by name."""
    rendered = documents(helm_template(env, "gitops/apps", "argocd", *sets))
    return {document["metadata"]["name"]: document for document in rendered}


@pytest.fixture(scope="module")
def with_crds(sim_cluster: SimCluster) -> SimCluster:
    """Upstream CRDs installed (server-side: Argo CD's Application schema is too large
    for client-side apply's annotation) and the namespaces the manifests target created."""
    for crd in upstream_crd_files(tools_dir()):
        applied = kubectl(
            sim_cluster.env, sim_cluster.kubeconfig, "apply", "--server-side", "-f", str(crd)
        )
        assert applied.returncode == 0, applied.stderr
    established = kubectl(
        sim_cluster.env, sim_cluster.kubeconfig, "wait", "--for=condition=Established",
        "--timeout=60s", "crd/applications.argoproj.io", "crd/appprojects.argoproj.io",
        "crd/servicemonitors.monitoring.coreos.com", "crd/prometheusrules.monitoring.coreos.com",
    )  # fmt: skip
    assert established.returncode == 0, established.stderr
    # Created for real: a dry-run cannot place objects in a namespace it only pretends
    # to create, and pod admission looks the RuntimeClass up. Every Namespace and
    # RuntimeClass the manifests declare, and argocd (Argo CD's install makes it).
    namespaces = [
        document
        for path in manifest_files()
        for document in documents(path.read_text())
        if document["kind"] in ("Namespace", "RuntimeClass")
    ]
    namespaces.append({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "argocd"}})
    created = kubectl(
        sim_cluster.env, sim_cluster.kubeconfig, "apply", "-f", "-",
        stdin=yaml.safe_dump_all(namespaces),
    )  # fmt: skip
    assert created.returncode == 0, created.stderr
    return sim_cluster


def test_charts_lint_and_deploy_files_come_from_the_chart(sim_cluster: SimCluster) -> None:
    helm = str(binary("helm", sim_cluster.env))
    for chart in ("charts/downscaler", "observability"):
        linted = run([helm, "lint", "--strict", str(REPO / chart)])
        assert linted.returncode == 0, linted.stdout + linted.stderr
    check = sim_cluster.cli("render", "deploy-files", "--check")
    assert check.code == 0, check.stderr
    assert "up to date" in check.stdout


def test_downscaler_chart_renders_the_contract(sim_cluster: SimCluster) -> None:
    rendered = documents(
        helm_template(
            sim_cluster.env, "charts/downscaler", "gpuplane-system", "serviceMonitor.enabled=true"
        )
    )
    kinds = {document["kind"] for document in rendered}
    assert {"Deployment", "ServiceAccount", "ClusterRole", "Role", "ServiceMonitor"} <= kinds
    assert "CustomResourceDefinition" not in kinds  # crds/ is Helm's own, not a template
    deployment = next(d for d in rendered if d["kind"] == "Deployment")
    assert deployment["spec"]["strategy"] == {"type": "Recreate"}
    pod = deployment["spec"]["template"]["spec"]
    assert pod["nodeSelector"] == {"node-role.kubernetes.io/infra": "true"}
    assert [t["key"] for t in pod["tolerations"]] == ["node-role.kubernetes.io/infra"]
    container = pod["containers"][0]
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "health"}
    health_port = next(p for p in container["ports"] if p["name"] == "health")
    assert f"--health-address=0.0.0.0:{health_port['containerPort']}" in container["args"]
    verbs = {
        verb
        for document in rendered
        if document["kind"] in ("ClusterRole", "Role")
        for rule in document["rules"]
        for verb in rule["verbs"]
    }
    assert not verbs & {"delete", "deletecollection", "*", "escalate", "bind", "impersonate"}


def test_the_downscaler_chart_runs_on_a_kubelet_node_through_the_pod_gateway(
    sim_cluster: SimCluster, tmp_path: Path
) -> None:
    """The values gitops up gives the operator where a kubelet node runs it: the pod on
    that node, tolerating exactly its taints, reaching the API server by a name its
    certificate carries (hostAliases) at the gateway, and scraped by pod annotations; the
    root Application's chart merges them over the ServiceMonitor it sets."""
    taints = [{"key": "node-role.kubernetes.io/app", "value": "true", "effect": "NoSchedule"}]
    values = downscaler_values("agent-0", taints, "10.244.0.1", GatewayPorts(443, 40123))
    values_file = tmp_path / "values.yaml"
    values_file.write_text(yaml.safe_dump(values))
    rendered = documents(
        helm_template(
            sim_cluster.env, "charts/downscaler", "gpuplane-system", values_file=str(values_file)
        )
    )
    pod = next(d for d in rendered if d["kind"] == "Deployment")["spec"]["template"]
    assert pod["metadata"]["annotations"]["prometheus.io/scrape"] == "true"
    spec = pod["spec"]
    assert spec["nodeSelector"] == {"kubernetes.io/hostname": "agent-0"}
    assert spec["tolerations"] == [
        {"key": "node-role.kubernetes.io/app", "operator": "Equal", "value": "true",
         "effect": "NoSchedule"},
    ]  # fmt: skip
    assert spec["hostAliases"] == [{"ip": "10.244.0.1", "hostnames": ["kubernetes.default.svc"]}]
    container = spec["containers"][0]
    assert container["image"].startswith("gpuplane.io/downscaler:")
    env = {item["name"]: item.get("value") for item in container["env"]}
    assert env["KUBERNETES_SERVICE_HOST"] == "kubernetes.default.svc"
    assert env["KUBERNETES_SERVICE_PORT"] == "443"
    assert "--prometheus-url=http://10.244.0.1:40123" in container["args"]
    # The default render has none of it (a real cluster's in-cluster path).
    plain = documents(helm_template(sim_cluster.env, "charts/downscaler", "gpuplane-system"))
    plain_pod = next(d for d in plain if d["kind"] == "Deployment")["spec"]["template"]["spec"]
    assert "hostAliases" not in plain_pod
    assert "KUBERNETES_SERVICE_HOST" not in {e["name"] for e in plain_pod["containers"][0]["env"]}
    apps_values = tmp_path / "apps.yaml"
    apps_values.write_text(yaml.safe_dump({"downscaler": values}))
    application = documents(
        helm_template(sim_cluster.env, "gitops/apps", "argocd", values_file=str(apps_values))
    )
    (downscaler,) = [a for a in application if a["metadata"]["name"] == "downscaler"]
    merged = downscaler["spec"]["source"]["helm"]["valuesObject"]
    assert merged["serviceMonitor"] == {"enabled": True}
    assert merged["nodeSelector"] == values["nodeSelector"]


ACTIVATOR_EXAMPLE = "charts/downscaler/examples/inference-behind-activator.yaml"


def test_the_charts_policy_example_reads_the_activators_counter(sim_cluster: SimCluster) -> None:
    plain = documents(helm_template(sim_cluster.env, "charts/downscaler", "gpuplane-system"))
    assert "DownscalePolicy" not in {document["kind"] for document in plain}  # none by default
    rendered = documents(
        helm_template(
            sim_cluster.env, "charts/downscaler", "gpuplane-system", values_file=ACTIVATOR_EXAMPLE
        )
    )
    (policy,) = [document for document in rendered if document["kind"] == "DownscalePolicy"]
    assert policy["metadata"]["namespace"] == "ml"
    assert "gpuplane_activator_requests_total" in policy["spec"]["wake"]["query"]
    requests = next(s for s in policy["spec"]["signals"] if s["name"] == "requests")
    assert "gpuplane_activator_requests_total" in requests["query"]


def test_every_manifest_passes_server_side_dry_run(with_crds: SimCluster) -> None:
    env, kubeconfig = with_crds.env, with_crds.kubeconfig
    rendered = {
        "charts/downscaler": helm_template(
            env, "charts/downscaler", "gpuplane-system", "serviceMonitor.enabled=true"
        ),
        "observability": helm_template(env, "observability", "monitoring"),
        "charts/downscaler with examples/inference-behind-activator.yaml": helm_template(
            env, "charts/downscaler", "gpuplane-system", values_file=ACTIVATOR_EXAMPLE
        ),
    }
    rendered["gitops/apps"] = helm_template(env, "gitops/apps", "argocd")
    for name, text in rendered.items():
        result = kubectl(env, kubeconfig, "apply", "--dry-run=server", "-f", "-", stdin=text)
        assert result.returncode == 0, f"{name}: {result.stderr}"
        assert "would violate PodSecurity" not in result.stderr, f"{name}: {result.stderr}"
    files = manifest_files()
    assert len(files) >= 15
    for path in files:
        result = kubectl(env, kubeconfig, "apply", "--dry-run=server", "-f", str(path))
        assert result.returncode == 0, f"{path.relative_to(REPO)}: {result.stderr}"
        restricted = any(f"namespace: {ns}" in path.read_text() for ns in RESTRICTED_NAMESPACES)
        if restricted:
            assert "would violate PodSecurity" not in result.stderr, result.stderr


def test_the_crds_reject_a_broken_application(with_crds: SimCluster) -> None:
    """The dry-run above can fail: an Application without a destination is refused."""
    application = platform_applications(with_crds.env)["demo"]
    del application["spec"]["destination"]
    result = kubectl(
        with_crds.env, with_crds.kubeconfig, "apply", "--dry-run=server", "-f", "-",
        stdin=yaml.safe_dump(application),
    )  # fmt: skip
    assert result.returncode != 0
    assert "spec.destination" in result.stderr


def test_gitops_structure(with_crds: SimCluster) -> None:
    """Every Application: project platform, a sync wave, pinned revisions; namespaces and
    CRDs sync first; Deployments a DownscalePolicy manages ignore /spec/replicas."""
    applications = [
        document
        for path in manifest_files()
        if path.is_relative_to(REPO / "gitops")
        for document in documents(path.read_text())
        if document["kind"] == "Application"
    ]
    applications += list(platform_applications(with_crds.env, "gpuExporter=gpu-exporter").values())
    applications += [platform_applications(with_crds.env)["dcgm-exporter"]]
    waves = {}
    for application in applications:
        spec = application["spec"]
        assert spec["project"] == "platform", application["metadata"]["name"]
        sources = [spec["source"]] if "source" in spec else spec["sources"]
        for source in sources:
            revision = str(source["targetRevision"])
            assert revision not in ("HEAD", "main", "master", "*", "latest"), revision
        annotations = application["metadata"].get("annotations") or {}
        if application["metadata"]["name"] != "platform-root":
            waves[application["metadata"]["name"]] = int(
                annotations["argocd.argoproj.io/sync-wave"]
            )
    first = min(waves.values())
    assert waves["namespaces"] == first
    assert waves["platform-crds"] < min(
        w for n, w in waves.items() if n not in ("namespaces", "platform-crds")
    )
    managed = {
        document["metadata"]["namespace"]
        for path in (REPO / "apps").rglob("*.yaml")
        for document in documents(path.read_text())
        if document["kind"] == "DownscalePolicy"
    }
    for application in applications:
        if application["spec"]["destination"].get("namespace") in managed:
            ignored = application["spec"].get("ignoreDifferences") or []
            assert {
                "group": "apps",
                "kind": "Deployment",
                "jsonPointers": ["/spec/replicas"],
            } in ignored
            assert (
                "RespectIgnoreDifferences=true" in application["spec"]["syncPolicy"]["syncOptions"]
            )


def test_the_root_application_syncs_exactly_one_gpu_exporter(sim_cluster: SimCluster) -> None:
    """dcgm-exporter and gpu-exporter export the same series: the chart renders one of
    the two, and the switch is one value of the root Application."""
    root = yaml.safe_load((REPO / "gitops/bootstrap/root-application.yaml").read_text())
    values = root["spec"]["source"]["helm"]["valuesObject"]
    assert values["gpuExporter"] == "dcgm-exporter"
    default = platform_applications(sim_cluster.env, f"gpuExporter={values['gpuExporter']}")
    switched = platform_applications(sim_cluster.env, "gpuExporter=gpu-exporter")
    exporters = {"dcgm-exporter", "gpu-exporter"}
    assert set(default) & exporters == {"dcgm-exporter"}
    assert set(switched) & exporters == {"gpu-exporter"}
    assert set(default) - exporters == set(switched) - exporters
    # Both go to the gpu node's namespace in the same wave, so a switch is one sync.
    apps = {"dcgm-exporter": default["dcgm-exporter"], "gpu-exporter": switched["gpu-exporter"]}
    assert {a["spec"]["destination"]["namespace"] for a in apps.values()} == {
        "gpu-operator-resources"
    }
    waves = {a["metadata"]["annotations"]["argocd.argoproj.io/sync-wave"] for a in apps.values()}
    assert waves == {"2"}
    paths = {source["path"] for source in apps["gpu-exporter"]["spec"]["sources"]}
    assert paths == {"apps/gpu-exporter", "gitops/monitors/gpu-exporter"}


def test_the_repository_is_a_parameter_and_sources_split_local_from_remote(
    sim_cluster: SimCluster,
) -> None:
    """Every Application reading this repository takes its URL and revision from the
    values; "local" and "remote" split the Applications without overlap; a wrong value
    fails the render with its name."""
    url, revision = "git://127.0.0.1:9/platform.git", "HEAD"
    every = platform_applications(sim_cluster.env, f"repoURL={url}", f"targetRevision={revision}")
    for name, application in every.items():
        spec = application["spec"]
        for source in [spec["source"]] if "source" in spec else spec["sources"]:
            if "chart" not in source:
                assert (source["repoURL"], source["targetRevision"]) == (url, revision), name
    local = platform_applications(sim_cluster.env, "sources=local")
    remote = platform_applications(sim_cluster.env, "sources=remote")
    assert set(local) | set(remote) == set(every) and not set(local) & set(remote)
    assert set(remote) == {"kube-prometheus-stack", "dcgm-exporter", "gpu-enablement"}
    with pytest.raises(OperationError, match="sources"):
        platform_applications(sim_cluster.env, "sources=everything")


def test_observability_chart_ships_the_files_unchanged(sim_cluster: SimCluster) -> None:
    """Dashboards as sidecar-labelled ConfigMaps and rules as PrometheusRules, each equal
    to its file under observability/ (one source)."""
    rendered = documents(helm_template(sim_cluster.env, "observability", "monitoring"))
    boards = {
        name: json.loads(text)
        for document in rendered
        if document["kind"] == "ConfigMap"
        and document["metadata"]["labels"].get("grafana_dashboard") == "1"
        for name, text in document["data"].items()
    }
    files = sorted((REPO / "observability" / "dashboards").glob("*.json"))
    assert sorted(boards) == [path.name for path in files]
    for path in files:
        assert boards[path.name] == json.loads(path.read_text())
    rules = [document for document in rendered if document["kind"] == "PrometheusRule"]
    (rule_file,) = sorted((REPO / "observability" / "rules").glob("*.yaml"))
    assert [rule["spec"] for rule in rules] == [yaml.safe_load(rule_file.read_text())]
    assert rules[0]["metadata"]["labels"]["release"] == "kube-prometheus-stack"


def chart_values(env: dict[str, str], name: str) -> dict[str, Any]:
    application = platform_applications(env)[name]
    spec = application["spec"]
    sources = [spec["source"]] if "source" in spec else spec["sources"]
    (chart,) = [source for source in sources if "chart" in source]
    values: dict[str, Any] = chart["helm"]["valuesObject"]
    return values


def test_components_are_pinned_to_their_nodes(sim_cluster: SimCluster) -> None:
    infra = {"node-role.kubernetes.io/infra": "true"}
    gpu = {"node-role.kubernetes.io/gpu": "true"}

    def tolerates(values: dict[str, Any], role: str) -> bool:
        return any(t.get("key") == f"node-role.kubernetes.io/{role}" for t in values["tolerations"])

    argocd = yaml.safe_load((REPO / "gitops/bootstrap/argocd-values.yaml").read_text())
    assert argocd["global"]["nodeSelector"] == infra and tolerates(argocd["global"], "infra")
    stack = chart_values(sim_cluster.env, "kube-prometheus-stack")
    for component in (
        stack["prometheusOperator"],
        stack["prometheus"]["prometheusSpec"],
        stack["alertmanager"]["alertmanagerSpec"],
        stack["grafana"],
        stack["kube-state-metrics"],
    ):
        assert component["nodeSelector"] == infra and tolerates(component, "infra")
    assert stack["prometheus-node-exporter"]["tolerations"] == [{"operator": "Exists"}]
    assert stack["grafana"]["sidecar"]["dashboards"]["label"] == "grafana_dashboard"
    for name in ("dcgm-exporter", "gpu-enablement"):
        values = chart_values(sim_cluster.env, name)
        assert values["nodeSelector"] == gpu and tolerates(values, "gpu"), name
        assert values["runtimeClassName"] == "nvidia", name
    assert (
        chart_values(sim_cluster.env, "gpu-enablement")["affinity"] is None
    )  # the default selects nothing
    assert chart_values(sim_cluster.env, "dcgm-exporter")["serviceMonitor"]["enabled"] is True
