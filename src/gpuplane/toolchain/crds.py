"""Upstream CustomResourceDefinitions the manifest checks need, from the Go module proxy.

gitops/ holds Argo CD Applications and AppProjects, and charts enable ServiceMonitors and
PrometheusRules: a server-side dry-run of those needs the CRDs installed. They ship in
the upstream repositories, which the Go module proxy serves as module zips; tools/crds
pins the versions and go.sum checks the content.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from gpuplane.errors import OperationError
from gpuplane.toolchain.gocmd import run_go

CRDS_MODULE_DIR = "crds"


@dataclass(frozen=True)
class UpstreamCrds:
    module: str
    files: tuple[str, ...]  # inside the module


UPSTREAM_CRDS = (
    UpstreamCrds(
        "github.com/argoproj/argo-cd/v3",
        ("manifests/crds/appproject-crd.yaml", "manifests/crds/application-crd.yaml"),
    ),
    UpstreamCrds(
        "github.com/prometheus-operator/prometheus-operator",
        tuple(
            f"example/prometheus-operator-crd/monitoring.coreos.com_{plural}.yaml"
            for plural in ("servicemonitors", "podmonitors", "prometheusrules")
        ),
    ),
)


def module_dirs(download_json: str) -> dict[str, Path]:
    """Module path -> extracted directory, from ``go mod download -json`` output."""
    decoder = json.JSONDecoder()
    found: dict[str, Path] = {}
    text, index = download_json.strip(), 0
    while index < len(text):
        record, end = decoder.raw_decode(text, index)
        if record.get("Error"):
            raise OperationError(f"go mod download {record.get('Path')}: {record['Error']}")
        found[record["Path"]] = Path(record["Dir"])
        index = end
        while index < len(text) and text[index].isspace():
            index += 1
    return found


def upstream_crd_files(tools: Path) -> list[Path]:
    """The pinned CRD files, downloaded into Go's module cache when not there yet."""
    return _module_files(tools / CRDS_MODULE_DIR, UPSTREAM_CRDS)


def monitoring_crd_files(tools: Path) -> list[Path]:
    """The Prometheus operator's ServiceMonitor, PodMonitor and PrometheusRule CRDs."""
    return [path for path in upstream_crd_files(tools) if "monitoring.coreos.com" in path.name]


# What `gpuplane gitops` installs: the CRDs of the Argo CD it runs (tools/argocd), not the
# newer ones the manifest checks validate against.
ARGOCD_RUNTIME_CRDS = UpstreamCrds(
    "github.com/argoproj/argo-cd/v2",
    ("manifests/crds/appproject-crd.yaml", "manifests/crds/application-crd.yaml"),
)


def argocd_crd_files(tools: Path) -> list[Path]:
    """Application and AppProject CRDs of the pinned Argo CD."""
    return _module_files(tools / "argocd", (ARGOCD_RUNTIME_CRDS,))


def _module_files(module_dir: Path, wanted: tuple[UpstreamCrds, ...]) -> list[Path]:
    modules = [entry.module for entry in wanted]
    output = run_go(["mod", "download", "-json", *modules], cwd=module_dir, timeout=600)
    dirs = module_dirs(output)
    files = []
    for entry in wanted:
        for name in entry.files:
            path = dirs[entry.module] / name
            if not path.is_file():
                raise OperationError(f"{entry.module} has no {name} at the pinned version")
            files.append(path)
    return files
