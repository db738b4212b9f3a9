"""``helm template`` with the Helm binary the toolchain builds, and the deploy files.

deploy/downscaler/*.yaml are generated from charts/downscaler (one source): the sim
backend applies them, and ``gpuplane render deploy-files --check`` proves they match.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from gpuplane.commands import run_command
from gpuplane.errors import PrerequisiteError

HELM_TIMEOUT_SECONDS = 120.0
DOWNSCALER_RELEASE = "gpuplane-downscaler"
DOWNSCALER_NAMESPACE = "gpuplane-system"
GENERATED_HEADER = (
    "# Generated from charts/downscaler by `gpuplane render deploy-files`:\n"
    "# edit the chart, then run that command again.\n"
)


@dataclass(frozen=True)
class DeployFile:
    """One generated file and the chart templates it holds."""

    name: str
    templates: tuple[str, ...]


DEPLOY_FILES = (
    DeployFile(
        "rbac.yaml",
        ("templates/namespace.yaml", "templates/serviceaccount.yaml", "templates/rbac.yaml"),
    ),
    DeployFile("deployment.yaml", ("templates/deployment.yaml", "templates/service.yaml")),
)
# The standalone files create the namespace themselves (no Argo CD wave does it).
DEPLOY_VALUES = {"namespace.create": "true"}


def helm_template(
    helm: Path,
    chart: Path,
    *,
    release: str,
    namespace: str,
    kube_version: str,
    values: Mapping[str, str] | None = None,
    show_only: tuple[str, ...] = (),
    values_files: tuple[Path, ...] = (),
) -> str:
    """The chart rendered offline for ``kube_version`` (helm's own default is old)."""
    if not helm.is_file():
        raise PrerequisiteError(f"helm is not built ({helm}); run `gpuplane toolchain build`")
    command = [
        str(helm), "template", release, str(chart),
        "--namespace", namespace, "--kube-version", kube_version,
    ]  # fmt: skip
    for file in values_files:
        command += ["--values", str(file)]
    for key, value in sorted((values or {}).items()):
        command += ["--set", f"{key}={value}"]
    for template in show_only:
        command += ["--show-only", template]
    return run_command(command, timeout=HELM_TIMEOUT_SECONDS, what=f"helm template {chart}")


def render_deploy_files(helm: Path, chart: Path, kube_version: str) -> dict[str, str]:
    """File name -> content of every deploy/downscaler file, rendered from the chart."""
    return {
        file.name: GENERATED_HEADER
        + helm_template(
            helm,
            chart,
            release=DOWNSCALER_RELEASE,
            namespace=DOWNSCALER_NAMESPACE,
            kube_version=kube_version,
            values=DEPLOY_VALUES,
            show_only=file.templates,
        )
        for file in DEPLOY_FILES
    }
