"""The platform's kubelet nodes together: which binaries and images they need, starting
and stopping them, and on a gpu node the GPU enablement (RuntimeClass, the device plugin
DaemonSet with the image built here, GFD-style labels read from NVML).
"""

from __future__ import annotations

from pathlib import Path

from lightkube import Client
from lightkube.resources.core_v1 import Node as NodeResource
from lightkube.types import PatchType

from gpuplane.backends.base import ComponentStatus, Reporter
from gpuplane.backends.gpu_enablement import apply_gpu_enablement, wait_gpus
from gpuplane.backends.local.binaries import LocalToolchain
from gpuplane.backends.local.kubelet.node import KubeletNode
from gpuplane.backends.local.kubelet.node_config import GpuBinaries, NodeBinaries
from gpuplane.backends.local.state import LocalState
from gpuplane.backends.platform_labels import missing_labels
from gpuplane.errors import PrerequisiteError
from gpuplane.nvml import probe_nvml, product_label
from gpuplane.toolchain import Pins, gpu_node_components, node_components, repo_root
from gpuplane.toolchain.images import DEVICE_PLUGIN_REPOSITORY, BuiltImage, build_images
from gpuplane.topology import Platform

# What the local backend's control plane runs (kwokctl drives them; it needs kubectl).
CONTROL_PLANE = (
    "etcd",
    "kube-apiserver",
    "kube-controller-manager",
    "kube-scheduler",
    "kubectl",
    "kwok",
    "kwokctl",
)


def needed_components(platform: Platform, pins: Pins) -> tuple[str, ...]:
    """Exactly the binaries ``up`` runs for ``platform``."""
    names = list(CONTROL_PLANE)
    if platform.kubelet_nodes:
        names += [c.name for c in node_components(pins)]
    if platform.has_kubelet_gpu_node:
        # The device plugin runs from its image, built once: its binary is not needed here.
        names += [c.name for c in gpu_node_components(pins) if c.name != "nvidia-device-plugin"]
    return tuple(names)


def node_binaries(binaries: dict[str, Path], *, gpu: bool) -> NodeBinaries:
    return NodeBinaries(
        kubelet=binaries["kubelet"],
        containerd=binaries["containerd"],
        runc=binaries["runc"],
        cni_dir=binaries["bridge"].parent,
        gpu=GpuBinaries(
            nvidia_ctk=binaries["nvidia-ctk"],
            nvidia_cdi_hook=binaries["nvidia-cdi-hook"],
            nvidia_container_runtime=binaries["nvidia-container-runtime"],
        )
        if gpu
        else None,
    )


class KubeletFleet:
    def __init__(self, platform: Platform, state: LocalState) -> None:
        self.platform = platform
        self.nodes = [
            KubeletNode(state.directory, node, ca_dir=state.pki, admin_kubeconfig=state.kubeconfig)
            for node in platform.kubelet_nodes
        ]

    def check_host(self) -> None:
        for node in self.nodes:
            node.check_host()

    def images(self, toolchain: LocalToolchain, *, rebuild: bool = False) -> list[BuiltImage]:
        """The platform's images; with a gpu node, the device plugin's too."""
        pins = toolchain.pins
        plugin = (
            (toolchain.plugin_binary, pins.device_plugin)
            if self.platform.has_kubelet_gpu_node
            else None
        )
        return build_images(
            toolchain.kube_module(),
            toolchain.cache,
            pins.kubernetes,
            device_plugin=plugin,
            rebuild=rebuild,
        )

    def start(
        self, binaries: dict[str, Path], images: list[BuiltImage], reporter: Reporter
    ) -> list[str]:
        changes: list[str] = []
        for node in self.nodes:
            changes += node.up(node_binaries(binaries, gpu=node.node.is_gpu), images, reporter)
        return changes

    @property
    def has_gpu_node(self) -> bool:
        return any(n.node.is_gpu for n in self.nodes)

    def enable_gpus(
        self, client: Client, pins: Pins, binaries: dict[str, Path], reporter: Reporter
    ) -> list[str]:
        """RuntimeClass and the device plugin DaemonSet (image built here) with the CDI
        device-list strategy, GFD-style labels from NVML; then wait until the plugin
        advertises every GPU."""
        if not self.has_gpu_node:
            return []
        gpu_nodes = [n.node.name for n in self.nodes if n.node.is_gpu]
        reporter.step("GPU enablement: RuntimeClass nvidia, the NVIDIA device plugin DaemonSet")
        image = f"{DEVICE_PLUGIN_REPOSITORY}:{pins.device_plugin}"
        # The node's containerd injects the plugin's CDI devices itself: a GPU pod gets its
        # GPU, and no other, whatever its runtime. runc runs the spec's hooks on this host,
        # so they name the hook binary built here.
        apply_gpu_enablement(
            client,
            repo_root(),
            self.platform,
            plugin_image=image,
            cdi_hook=binaries["nvidia-cdi-hook"],
        )
        labels = gfd_labels_from_nvml()
        for name in gpu_nodes:
            live = client.get(NodeResource, name).metadata
            patch = missing_labels(labels, dict((live.labels if live else None) or {}))
            if patch:
                client.patch(
                    NodeResource, name, {"metadata": {"labels": patch}}, patch_type=PatchType.MERGE
                )
        reporter.step("waiting for nvidia.com/gpu from the device plugin")
        wait_gpus(client, self.platform, gpu_nodes, timeout=180.0)
        return [f"node {name}: GPUs advertised by the device plugin" for name in gpu_nodes]

    def load_images(
        self, binaries: dict[str, Path], images: list[BuiltImage]
    ) -> dict[str, list[str]]:
        loaded: dict[str, list[str]] = {}
        for node in self.nodes:
            if not node.processes.running("containerd"):
                raise PrerequisiteError(
                    f"kubelet node {node.node.name!r} is not running (gpuplane up)"
                )
            gpu = node.node.is_gpu
            loaded[node.node.name] = node.import_images(node_binaries(binaries, gpu=gpu), images)
        return loaded

    def stop(self, reporter: Reporter) -> None:
        for node in self.nodes:
            if node.layout.root.exists():
                left = node.down(reporter)
                if left:
                    reporter.step(f"node {node.node.name}: could not remove {', '.join(left)}")

    def statuses(self) -> tuple[ComponentStatus, ...]:
        return tuple(status for node in self.nodes for status in node.statuses())


def gfd_labels_from_nvml() -> dict[str, str]:
    """What GPU Feature Discovery would label this host's gpu node with, from NVML."""
    probe = probe_nvml()
    if probe.error or not probe.gpus:
        raise PrerequisiteError(f"NVML: {probe.error or 'no GPU'} (see gpuplane doctor)")
    return {
        "nvidia.com/gpu.present": "true",
        "nvidia.com/gpu.product": product_label(probe.names[0]),
        "nvidia.com/gpu.count": str(probe.gpus),
        "nvidia.com/gpu.memory": str(probe.memory_mib[0]),
    }
