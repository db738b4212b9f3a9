"""The Terraform-compatible binary the Terraform flow runs, and its provider mirror.

``terraform`` on PATH first, then ``tofu`` on PATH; with neither, OpenTofu built from its
Go module (tools/tofu) into the cache, like the other upstream binaries.

infra/platform's provider, gavinbunney/kubectl, is built from its Go module
(tools/terraform-provider-kubectl) and laid out as a filesystem mirror under the cache,
under both registries' addresses (terraform resolves ``gavinbunney/kubectl`` on one,
OpenTofu on the other), so ``init`` is offline and instant with either.
"""

from __future__ import annotations

import contextlib
import os
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


# The provider addresses a bare ``gavinbunney/kubectl`` source means to each tool.
PROVIDER_HOSTS = ("registry.terraform.io", "registry.opentofu.org")
PROVIDER_PLATFORM = "linux_amd64"


def mirror_entry(mirror: Path, host: str, version: str) -> Path:
    """Where a filesystem mirror keeps the provider binary (the unpacked layout)."""
    bare = version.removeprefix("v")
    return (
        mirror / host / "gavinbunney" / "kubectl" / bare / PROVIDER_PLATFORM
        / f"terraform-provider-kubectl_v{bare}"
    )  # fmt: skip


def provider_mirror(tools: Path, cache: Path, pins: Pins, report: ProgressFn | None = None) -> Path:
    """The filesystem mirror holding the pinned kubectl provider, built on first use."""
    provider = component(pins, "terraform-provider-kubectl")
    if not provider.is_built(cache):
        ensure_built(tools, cache, pins, report, optional=(provider.name,))
    mirror = cache / "terraform-mirror"
    for host in PROVIDER_HOSTS:
        entry = mirror_entry(mirror, host, pins.kubectl_provider)
        if entry.is_file():
            continue
        entry.parent.mkdir(parents=True, exist_ok=True)
        staged = entry.with_name(entry.name + ".tmp")
        with contextlib.suppress(FileNotFoundError):
            staged.unlink()
        try:
            os.link(provider.path(cache), staged)  # same filesystem: no second 76 MB
        except OSError:
            shutil.copy2(provider.path(cache), staged)
        staged.replace(entry)
    return mirror
