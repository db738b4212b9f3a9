"""The Terraform-compatible binary the Terraform flow runs.

``terraform`` on PATH first, then ``tofu`` on PATH; with neither, OpenTofu built from its
Go module (tools/tofu) into the cache, like the other upstream binaries.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

from gpuplane.toolchain.build import ProgressFn, ensure_built
from gpuplane.toolchain.components import component
from gpuplane.toolchain.pins import Pins

Which = Callable[[str], str | None]


def on_path(which: Which = shutil.which) -> Path | None:
    """A terraform or tofu the host already has."""
    for name in ("terraform", "tofu"):
        found = which(name)
        if found:
            return Path(found)
    return None


def terraform_binary(
    tools: Path,
    cache: Path,
    pins: Pins,
    report: ProgressFn | None = None,
    *,
    which: Which = shutil.which,
    prefer_built: bool = False,
) -> Path:
    """The binary to run; ``prefer_built`` skips PATH (the OpenTofu tests use it)."""
    found = None if prefer_built else on_path(which)
    if found is not None:
        return found
    tofu = component(pins, "tofu")
    if not tofu.is_built(cache):
        ensure_built(tools, cache, pins, report, optional=("tofu",))
    return tofu.path(cache)
