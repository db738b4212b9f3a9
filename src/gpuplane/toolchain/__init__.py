"""Find, build and cache the upstream binaries (control plane, etcd, KWOK)."""

from gpuplane.toolchain.build import BuildProgress, ProgressFn, ensure_built
from gpuplane.toolchain.components import (
    Component,
    cache_dir,
    component,
    components,
    gpu_node_components,
    node_components,
)
from gpuplane.toolchain.modules import pins_for
from gpuplane.toolchain.pins import Pins, read_pins, repo_root, tools_dir

__all__ = [
    "BuildProgress",
    "Component",
    "Pins",
    "ProgressFn",
    "cache_dir",
    "component",
    "components",
    "ensure_built",
    "gpu_node_components",
    "node_components",
    "pins_for",
    "read_pins",
    "repo_root",
    "tools_dir",
]
