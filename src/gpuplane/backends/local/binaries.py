"""The toolchain as the local backend uses it for one platform: where the wrapper modules
and the cache are, the pins at the platform's Kubernetes version, and the binaries built
(first use) or found (cached)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from gpuplane.toolchain import (
    Pins,
    ProgressFn,
    cache_dir,
    ensure_built,
    pins_for,
    read_pins,
    tools_dir,
)
from gpuplane.toolchain.modules import prepare_kube_module
from gpuplane.topology import Platform


@dataclass(frozen=True)
class LocalToolchain:
    tools: Path
    cache: Path
    pins: Pins

    @classmethod
    def of(cls, platform: Platform, cache: Path | None = None) -> LocalToolchain:
        tools, where = tools_dir(), cache or cache_dir()
        return cls(
            tools, where, pins_for(tools, where, read_pins(tools), platform.spec.kubernetes_version)
        )

    def built(self, names: tuple[str, ...], report: ProgressFn | None = None) -> dict[str, Path]:
        """Exactly the binaries ``names``, built into the cache when missing."""
        return ensure_built(self.tools, self.cache, self.pins, report, only=names)

    def kube_module(self) -> Path:
        """The wrapper module of the platform's Kubernetes release (its pause.c)."""
        return prepare_kube_module(self.tools, self.cache, self.pins, self.pins.kubernetes)

    def plugin_binary(self) -> Path:
        """The NVIDIA device plugin (only its image needs it, once)."""
        return self.built(("nvidia-device-plugin",))["nvidia-device-plugin"]
