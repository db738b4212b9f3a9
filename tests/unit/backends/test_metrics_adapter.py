"""The Prometheus adapter's wiring on the local backend: where it listens, how the API
server reaches it, which name its certificate carries, and that the rules it serves are
the ones the HPA manifests ask for."""

from __future__ import annotations

import base64
import datetime
from pathlib import Path

import yaml
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID

from gpuplane.backends.local.autoscaling import (
    AdapterPaths,
    adapter_argv,
    issue_serving_certificate,
    registration,
)

REPO = Path(__file__).resolve().parents[3]


def test_the_adapter_listens_on_loopback_only(tmp_path: Path) -> None:
    argv = adapter_argv(Path("/bin/adapter"), 40001, AdapterPaths(tmp_path), "http://127.0.0.1:9")
    assert "--bind-address=127.0.0.1" in argv
    assert "--secure-port=40001" in argv
    assert "--prometheus-url=http://127.0.0.1:9/" in argv
    # Its own credentials for every call to the API server, never the admin's.
    kubeconfigs = [a for a in argv if "kubeconfig=" in a]
    assert len(kubeconfigs) == 3
    assert all(a.endswith("adapter.kubeconfig") for a in kubeconfigs)


def test_the_api_server_reaches_the_adapter_through_an_external_name() -> None:
    service, *api_services = registration(40001, b"CA PEM")
    assert service["spec"] == {
        "type": "ExternalName",
        "externalName": "localhost",
        "ports": [{"name": "https", "port": 40001, "targetPort": 40001}],
    }
    versions = sorted(a["spec"]["version"] for a in api_services)
    assert versions == ["v1beta1", "v1beta2"]
    for api_service in api_services:
        spec = api_service["spec"]
        assert spec["group"] == "custom.metrics.k8s.io"
        assert base64.b64decode(spec["caBundle"]) == b"CA PEM"
        assert "insecureSkipTLSVerify" not in spec
        assert spec["service"] == {
            "name": service["metadata"]["name"],
            "namespace": service["metadata"]["namespace"],
            "port": 40001,
        }


def test_the_serving_certificate_names_the_service_the_aggregator_checks(tmp_path: Path) -> None:
    paths = AdapterPaths(tmp_path / "autoscale")
    issue_serving_certificate(paths, datetime.datetime(2026, 12, 6, tzinfo=datetime.UTC))
    serving = x509.load_pem_x509_certificate(paths.serving_cert.read_bytes())
    ca = x509.load_pem_x509_certificate(paths.ca.read_bytes())
    names = serving.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert "prometheus-adapter.custom-metrics.svc" in names.get_values_for_type(x509.DNSName)
    serving.verify_directly_issued_by(ca)
    usages = serving.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(usages) == [ExtendedKeyUsageOID.SERVER_AUTH]
    assert (paths.serving_key.stat().st_mode & 0o777) == 0o600
    assert not list(paths.directory.glob("ca.key"))  # the CA's key is not kept


def test_every_metric_the_hpas_read_has_a_rule() -> None:
    rules = yaml.safe_load((REPO / "deploy/prometheus-adapter/config.yaml").read_text())["rules"]
    served = {rule["seriesQuery"].split("{")[0] for rule in rules}
    for manifest in sorted((REPO / "apps/autoscaling").glob("*.yaml")):
        for document in yaml.safe_load_all(manifest.read_text()):
            for metric in document["spec"]["metrics"]:
                source = metric.get("object") or metric.get("pods")
                name = source["metric"]["name"]
                renamed = {"gpu_utilization_percent": "DCGM_FI_DEV_GPU_UTIL"}.get(name, name)
                assert renamed in served, f"{manifest.name}: no adapter rule serves {name}"


def test_every_hpa_scales_a_deployment_the_repository_declares() -> None:
    declared = {
        (document["metadata"]["namespace"], document["metadata"]["name"])
        for path in (REPO / "apps").rglob("*.yaml")
        for document in yaml.safe_load_all(path.read_text())
        if document and document["kind"] == "Deployment"
    }
    for manifest in sorted((REPO / "apps/autoscaling").glob("*.yaml")):
        (hpa,) = [d for d in yaml.safe_load_all(manifest.read_text()) if d]
        target = hpa["spec"]["scaleTargetRef"]
        assert (hpa["metadata"]["namespace"], target["name"]) in declared, manifest.name
        for metric in hpa["spec"]["metrics"]:
            if metric["type"] == "Object":
                assert metric["object"]["describedObject"]["name"] == target["name"]
        # Scale-in waits: a lull is not the end of the load (no flapping).
        assert hpa["spec"]["behavior"]["scaleDown"]["stabilizationWindowSeconds"] >= 60
