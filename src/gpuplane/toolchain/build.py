"""Build the upstream binaries from their wrapper Go modules into the cache.

One ``go build`` per wrapper module builds all of its binaries together, so the
packages they share (most of Kubernetes) compile once. ``go build -v`` names each
package as it compiles; counting those against ``go list -deps`` gives real progress.
"""

from __future__ import annotations

import re
import subprocess
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from gpuplane.errors import OperationError
from gpuplane.toolchain.components import Component, WrapperModule, components
from gpuplane.toolchain.gocmd import check_go, go_env, run_go
from gpuplane.toolchain.modules import prepare_kube_module
from gpuplane.toolchain.pins import Pins

BUILD_TIMEOUT_SECONDS = 3600.0


@dataclass(frozen=True)
class BuildProgress:
    """What a build reports while it runs: which binaries, and packages compiled so far."""

    binaries: tuple[str, ...]
    compiled: int
    total: int
    finished: bool = False


ProgressFn = Callable[[BuildProgress], None]


def kubernetes_ldflags(version: str) -> str:
    """Linker flags that make the binaries report ``version`` (as upstream's release does)."""
    major, minor, _ = version.removeprefix("v").split(".")
    flags = ["-s", "-w"]
    for package in ("k8s.io/component-base/version", "k8s.io/client-go/pkg/version"):
        flags += [
            f"-X {package}.gitVersion={version}",
            f"-X {package}.gitMajor={major}",
            f"-X {package}.gitMinor={minor}",
            f"-X {package}.gitTreeState=clean",
        ]
    return " ".join(flags)


def go_output_name(package: str) -> str:
    """The file name ``go build -o DIR/`` gives a main package (major suffix dropped)."""
    parts = package.split("/")
    if len(parts) > 1 and re.fullmatch(r"v\d+", parts[-1]):
        return parts[-2]
    return parts[-1]


@dataclass(frozen=True)
class BuildRecipe:
    """How one wrapper module builds: where, with which linker flags, tags and cgo."""

    module_dir: Path
    ldflags: str
    tags: tuple[str, ...] = ()
    cgo: bool = False

    def env(self) -> dict[str, str]:
        """The environment of EVERY go command of this recipe, listing included: with
        cgo off, go excludes a cgo package's files, and ``go list`` of the NVIDIA toolkit
        failed ("build constraints exclude all Go files") while only the build had cgo."""
        return go_env({"CGO_ENABLED": "1"} if self.cgo else None)

    def tag_arguments(self) -> list[str]:
        return ["-tags", ",".join(self.tags)] if self.tags else []

    def dependencies(self, packages: Sequence[str]) -> list[str]:
        """Every package ``go build`` of ``packages`` compiles (its progress total)."""
        listed = run_go(
            ["list", *self.tag_arguments(), "-deps", *packages],
            cwd=self.module_dir,
            timeout=600,
            env=self.env(),
        )
        return listed.splitlines()


def build_recipe(module: WrapperModule, tools: Path, cache: Path, pins: Pins) -> BuildRecipe:
    """Each module's flags: version stamps where upstream's release sets them."""
    here = tools / module.value
    if module is WrapperModule.KUBE:
        return BuildRecipe(
            prepare_kube_module(tools, cache, pins, pins.kubernetes),
            kubernetes_ldflags(pins.kubernetes),
        )
    recipes = {
        WrapperModule.HELM: BuildRecipe(
            here, f"-s -w -X helm.sh/helm/v3/internal/version.version={pins.helm}"
        ),
        # The version comes from OpenTofu's embedded VERSION file; "dev=no" drops the
        # "-dev" suffix a plain `go build` reports.
        WrapperModule.TOFU: BuildRecipe(
            here, "-s -w -X github.com/opentofu/opentofu/version.dev=no"
        ),
        # No btrfs/devmapper/zfs snapshotters: overlayfs is what nodes use, and those need
        # cgo and libraries.
        WrapperModule.CONTAINERD: BuildRecipe(
            here,
            f"-s -w -X github.com/containerd/containerd/v2/version.Version={pins.containerd}",
            tags=("no_btrfs", "no_devmapper", "no_zfs"),
        ),
        # runc needs cgo (nsexec) and seccomp; linked statically against Debian's
        # libseccomp.a so the binary runs on any host (the GPU machine included).
        WrapperModule.RUNC: BuildRecipe(
            here,
            f"-s -w -X main.version={pins.runc.removeprefix('v')} -extldflags -static",
            tags=("seccomp", "netgo", "osusergo"),
            cgo=True,
        ),
        # Both load NVML (the driver's library) at run time through cgo; linked against
        # glibc, which every host with an NVIDIA driver has.
        # `argocd version` reports the pin, as upstream's release stamps it.
        WrapperModule.ARGOCD: BuildRecipe(
            here,
            "-s -w -X github.com/argoproj/argo-cd/v2/common.version="
            + pins.argocd.removeprefix("v"),
        ),
        WrapperModule.NVIDIA_TOOLKIT: BuildRecipe(here, "-s -w", cgo=True),
        WrapperModule.DEVICE_PLUGIN: BuildRecipe(here, "-s -w", cgo=True),
    }
    return recipes.get(module, BuildRecipe(here, "-s -w"))


def ensure_built(
    tools: Path,
    cache: Path,
    pins: Pins,
    report: ProgressFn | None = None,
    *,
    optional: tuple[str, ...] = (),
    only: tuple[str, ...] | None = None,
) -> dict[str, Path]:
    """Every component's binary path, building the ones the cache lacks.

    Optional components are built only when named in ``optional``; with ``only``, just
    those components are wanted (a host that runs a cluster needs neither helm nor
    kubectl, and a packed cache for a host without Go holds only what it runs).
    """
    wanted = [
        c
        for c in components(pins)
        if (c.name in only if only is not None else not c.optional or c.name in optional)
    ]
    missing = [component for component in wanted if not component.is_built(cache)]
    for module in WrapperModule:
        group = [component for component in missing if component.module is module]
        if group:
            recipe = build_recipe(module, tools, cache, pins)
            build_group(recipe, group, cache, report)
    return {component.name: component.path(cache) for component in wanted}


def build_group(
    recipe: BuildRecipe,
    group: Sequence[Component],
    cache: Path,
    report: ProgressFn | None,
) -> None:
    """Build ``group`` in one ``go build`` and move each binary into its cache slot."""
    packages = [component.package for component in group]
    names = tuple(component.name for component in group)
    total = len(recipe.dependencies(packages))
    (cache / "bin").mkdir(parents=True, exist_ok=True)
    env = recipe.env()
    tags = recipe.tag_arguments()
    with tempfile.TemporaryDirectory(dir=cache / "bin", prefix=".build-") as staging:
        command = [check_go(), "build", "-v", "-trimpath", *tags, "-ldflags", recipe.ldflags]
        command += ["-o", staging + "/", *packages]
        _run_with_progress(command, recipe.module_dir, env, names, total=total, report=report)
        for component in group:
            built = Path(staging) / go_output_name(component.package)
            target = component.path(cache)
            target.parent.mkdir(parents=True, exist_ok=True)
            built.replace(target)
            target.chmod(0o755)


def _run_with_progress(
    command: list[str],
    cwd: Path,
    env: dict[str, str],
    names: tuple[str, ...],
    *,
    total: int,
    report: ProgressFn | None,
) -> None:
    compiled = 0
    tail: list[str] = []
    deadline = time.monotonic() + BUILD_TIMEOUT_SECONDS
    with subprocess.Popen(
        command,
        cwd=cwd,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    ) as process:
        for line in process.stderr or ():
            # -v prints one import path per compiled package; anything else is a message.
            if re.fullmatch(r"[\w.\-/~+]+", line.strip()):
                compiled += 1
                if report is not None:
                    report(BuildProgress(names, min(compiled, total), total))
            else:
                tail = [*tail[-40:], line.rstrip()]
            if time.monotonic() > deadline:
                process.kill()
                raise OperationError(
                    f"building {', '.join(names)} took over {BUILD_TIMEOUT_SECONDS:.0f}s"
                )
        code = process.wait()
    if code != 0:
        details = "\n".join(tail) or f"exit code {code}"
        raise OperationError(f"building {', '.join(names)} in {cwd} failed:\n{details}")
    if report is not None:
        report(BuildProgress(names, total, total, finished=True))
