"""The k3d backend: k3s nodes in Docker with a CUDA node image and the NVIDIA device
plugin. Needs Docker + NVIDIA driver + Container Toolkit (``gpuplane doctor``).

``up`` = render config -> ``k3d cluster create`` -> private kubeconfig -> platform step
(declared labels, the same code the local backend runs) -> RuntimeClass + device plugin ->
wait for ``nvidia.com/gpu`` allocatable on every gpu node.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import yaml
from lightkube.resources.core_v1 import Node as NodeResource

from gpuplane.backends.base import (
    ClusterStatus,
    HostReport,
    NodeStatus,
    Reporter,
    ResolvedPlatform,
    UpResult,
)
from gpuplane.backends.gpu_enablement import apply_gpu_enablement, wait_gpus
from gpuplane.backends.k3d.config import render_k3d_config
from gpuplane.backends.platform_labels import apply_node_labels
from gpuplane.backends.state_root import default_state_root
from gpuplane.commands import run_command
from gpuplane.doctor import collect_facts, evaluate
from gpuplane.errors import PrerequisiteError
from gpuplane.kube import connect, get_raw, is_reachable, version_of
from gpuplane.kube.files import write_private
from gpuplane.toolchain import read_pins, repo_root
from gpuplane.topology import Platform

CREATE_TIMEOUT_SECONDS = 900.0


def k3d_binary() -> str:
    found = shutil.which("k3d")
    if found is None:
        raise PrerequisiteError(
            "k3d is not installed (the k3d backend needs it; see gpuplane doctor)"
        )
    return found


def run_k3d(args: list[str], timeout: float = 120.0) -> str:
    return run_command([k3d_binary(), *args], timeout=timeout, what=f"k3d {' '.join(args)}")


class K3dBackend:
    name = "k3d"

    def __init__(self, state_root: Path | None = None) -> None:
        self._root = state_root or default_state_root()

    def resolve(self, platform: Platform) -> ResolvedPlatform:
        """k3s nodes are always real: ``runtime`` means nothing here."""
        return ResolvedPlatform(platform)

    def preflight(self, platform: Platform) -> HostReport:
        return self.host_report()

    def host_report(self) -> HostReport:
        """Docker with GPU support, the NVIDIA driver and Container Toolkit, k3d: the
        same whatever the platform declares."""
        return HostReport(
            "the k3d backend", tuple(evaluate(collect_facts())), "use --backend local"
        )

    def images(self) -> None:
        """k3s nodes pull from registries; gpuplane loads no images into them."""
        return None

    def services(self) -> None:
        """Its services run in the cluster (kube-prometheus-stack): reach them there."""
        return None

    def gitops(self) -> None:
        """Argo CD is installed in the cluster by Helm (gitops/README.md, Bootstrap)."""
        return None

    def autoscaling(self) -> None:
        """The adapter runs in the cluster (deploy/prometheus-adapter, docs/autoscaling.md)."""
        return None

    def _dir(self, platform: Platform) -> Path:
        return self._root / f"k3d-{platform.name}"

    def kubeconfig(self, platform: Platform) -> Path:
        return self._dir(platform) / "kubeconfig"

    def _version(self, platform: Platform) -> str:
        return platform.spec.kubernetes_version or read_pins().kubernetes

    def up(self, resolved: ResolvedPlatform, reporter: Reporter) -> UpResult:
        platform = resolved.platform
        self.preflight(platform).require()
        directory = self._dir(platform)
        directory.mkdir(parents=True, exist_ok=True)
        kubeconfig = self.kubeconfig(platform)
        created = False
        if not is_reachable(kubeconfig):
            config = directory / "k3d-config.yaml"
            config.write_text(
                yaml.safe_dump(
                    render_k3d_config(platform, self._version(platform)), sort_keys=False
                )
            )
            reporter.step(f"creating k3d cluster {platform.name!r} (pulls/starts node containers)")
            run_k3d(["cluster", "create", "--config", str(config)], timeout=CREATE_TIMEOUT_SECONDS)
            write_private(kubeconfig, yaml.safe_load(run_k3d(["kubeconfig", "get", platform.name])))
            created = True
        client = connect(kubeconfig)
        reporter.step("applying role labels (platform step) and GPU enablement")
        changes = [f"node {name} labelled" for name in apply_node_labels(client, platform)]
        apply_gpu_enablement(client, repo_root(), platform)
        reporter.step("waiting for nvidia.com/gpu on the gpu nodes (device plugin)")
        wait_gpus(client, platform, [node.name for node in platform.gpu_nodes])
        return UpResult(kubeconfig, created, () if created else tuple(changes))

    def down(self, platform: Platform, reporter: Reporter) -> bool:
        directory = self._dir(platform)
        existed = directory.exists()
        if shutil.which("k3d") is not None:
            listed = run_k3d(["cluster", "list", "-o", "json"])
            if any(item.get("name") == platform.name for item in yaml.safe_load(listed) or []):
                reporter.step(f"deleting k3d cluster {platform.name!r}")
                run_k3d(["cluster", "delete", platform.name], timeout=300)
                existed = True
        shutil.rmtree(directory, ignore_errors=True)
        return existed

    def status(self, platform: Platform) -> ClusterStatus:
        kubeconfig = self.kubeconfig(platform)
        if not is_reachable(kubeconfig):
            return ClusterStatus(platform.name, "k3d", False, None, None)
        nodes = [NodeStatus.of(node.to_dict()) for node in connect(kubeconfig).list(NodeResource)]
        return ClusterStatus(
            platform.name,
            "k3d",
            True,
            kubeconfig,
            version_of(get_raw(kubeconfig, "/version")),
            nodes=tuple(nodes),
        )
