"""Toolchain logic without building: pins read from go.mod, staging versions, binary
names ``go build -o DIR/`` produces, version ldflags, Go version parsing, cache paths.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from gpuplane.toolchain import (
    cache_dir,
    component,
    components,
    gpu_node_components,
    node_components,
    read_pins,
)
from gpuplane.toolchain.build import go_output_name, kubernetes_ldflags
from gpuplane.toolchain.gocmd import parse_go_version
from gpuplane.toolchain.modules import staging_modules
from gpuplane.toolchain.pins import required_version, staging_version
from gpuplane.toolchain.terraform import PROVIDER_HOSTS, on_path, provider_mirror, terraform_binary

REPO = Path(__file__).resolve().parents[3]


def test_pins_come_from_the_wrapper_modules() -> None:
    pins = read_pins(REPO / "tools")
    kube_mod = (REPO / "tools/kube/go.mod").read_text()
    assert f"k8s.io/kubernetes {pins.kubernetes}" in kube_mod
    assert f"go.etcd.io/etcd/server/v3 {pins.etcd}" in kube_mod
    assert f"sigs.k8s.io/kwok {pins.kwok}" in (REPO / "tools/kwok/go.mod").read_text()
    assert f"helm.sh/helm/v3 {pins.helm}" in (REPO / "tools/helm/go.mod").read_text()


def test_every_staging_module_is_replaced_at_the_matching_version() -> None:
    pins = read_pins(REPO / "tools")
    kube_mod = (REPO / "tools/kube/go.mod").read_text()
    names = staging_modules(kube_mod)
    assert {"k8s.io/api", "k8s.io/apiserver", "k8s.io/client-go"} <= set(names)
    for name in names:
        assert f"{name} => {name} {staging_version(pins.kubernetes)}" in kube_mod


def test_default_platform_version_is_the_pin() -> None:
    platform_text = (REPO / "platform.yaml").read_text()
    assert f"kubernetesVersion: {read_pins(REPO / 'tools').kubernetes}" in platform_text


@pytest.mark.parametrize(
    ("text", "version"),
    [
        ("require k8s.io/kubernetes v1.34.2\n", "v1.34.2"),
        ("require (\n\tk8s.io/kubernetes v1.35.0 // indirect\n)\n", "v1.35.0"),
        ("require k8s.io/kubernetes-extra v9.9.9\n", None),
    ],
)
def test_required_version(text: str, version: str | None) -> None:
    assert required_version(text, "k8s.io/kubernetes") == version


def test_staging_version() -> None:
    assert staging_version("v1.34.2") == "v0.34.2"
    with pytest.raises(ValueError, match="unsupported"):
        staging_version("v2.0.0")


def test_go_output_names_drop_the_major_version_suffix() -> None:
    assert go_output_name("go.etcd.io/etcd/server/v3") == "server"
    assert go_output_name("k8s.io/kubernetes/cmd/kube-apiserver") == "kube-apiserver"
    assert go_output_name("sigs.k8s.io/kwok/cmd/kwokctl") == "kwokctl"


def test_ldflags_set_both_version_packages() -> None:
    flags = kubernetes_ldflags("v1.34.2")
    for package in ("k8s.io/component-base/version", "k8s.io/client-go/pkg/version"):
        assert f"-X {package}.gitVersion=v1.34.2" in flags
        assert f"-X {package}.gitMajor=1" in flags
        assert f"-X {package}.gitMinor=34" in flags


def test_parse_go_version() -> None:
    assert parse_go_version("go version go1.26.8 linux/amd64") == (1, 26)
    assert parse_go_version("go version devel +abc") is None


def test_cache_dir_and_component_paths(tmp_path: Path) -> None:
    assert cache_dir({"GPUPLANE_CACHE": str(tmp_path)}) == tmp_path
    assert cache_dir({}) == Path.home() / ".cache" / "gpuplane"
    pins = read_pins(REPO / "tools")
    by_name = {component.name: component for component in components(pins)}
    apiserver = by_name["kube-apiserver"]
    assert apiserver.path(tmp_path) == (
        tmp_path / "bin" / f"kube-apiserver-{pins.kubernetes}" / "kube-apiserver"
    )
    assert not apiserver.is_built(tmp_path)
    apiserver.path(tmp_path).parent.mkdir(parents=True)
    apiserver.path(tmp_path).write_text("#!/bin/sh\n")
    assert not apiserver.is_built(tmp_path)  # not executable yet
    apiserver.path(tmp_path).chmod(0o755)
    assert apiserver.is_built(tmp_path)
    assert by_name["etcd"].version == pins.etcd


def test_terraform_choice_prefers_the_hosts_binary(tmp_path: Path) -> None:
    pins = read_pins(REPO / "tools")
    assert f"github.com/opentofu/opentofu {pins.tofu}" in (REPO / "tools/tofu/go.mod").read_text()
    argocd_mod = (REPO / "tools/argocd/go.mod").read_text()
    assert f"github.com/argoproj/argo-cd/v2 {pins.argocd}" in argocd_mod
    both = {"terraform": "/usr/bin/terraform", "tofu": "/usr/bin/tofu"}
    assert on_path(both.get) == Path("/usr/bin/terraform")
    assert on_path({"tofu": "/usr/bin/tofu"}.get) == Path("/usr/bin/tofu")
    assert on_path({}.get) is None
    # Neither on PATH: the cached OpenTofu (present here, so nothing is built).
    tofu = component(pins, "tofu")
    # Built on demand only: OpenTofu, and what a kubelet node runs.
    node = {c.name for c in node_components(pins)}
    assert node == {
        "kubelet",
        "containerd",
        "containerd-shim-runc-v2",
        "ctr",
        "runc",
        "bridge",
        "host-local",
        "loopback",
    }
    gpu = {c.name for c in gpu_node_components(pins)}
    assert gpu == {
        "nvidia-ctk",
        "nvidia-cdi-hook",
        "nvidia-container-runtime",
        "nvidia-device-plugin",
    }
    assert {c.name for c in components(pins) if c.optional} == {
        "tofu",
        "terraform-provider-kubectl",
        "kube-multicall",
        "argocd",
        "prometheus-adapter",
        *node,
        *gpu,
    }
    tofu.path(tmp_path).parent.mkdir(parents=True)
    tofu.path(tmp_path).write_text("#!/bin/sh\n")
    tofu.path(tmp_path).chmod(0o755)
    chosen = terraform_binary(REPO / "tools", tmp_path, pins, which={}.get)
    assert chosen == tofu.path(tmp_path)
    assert terraform_binary(REPO / "tools", tmp_path, pins, which=both.get) == Path(
        "/usr/bin/terraform"
    )


def test_the_provider_mirror_layout_for_terraform_and_opentofu(tmp_path: Path) -> None:
    """A filesystem mirror's unpacked layout, under the address each tool gives a bare
    gavinbunney/kubectl source; the provider binary is linked there, built once."""
    pins = read_pins(REPO / "tools")
    assert pins.kubectl_provider == "v1.19.0"
    provider = component(pins, "terraform-provider-kubectl")
    provider.path(tmp_path).parent.mkdir(parents=True)
    provider.path(tmp_path).write_text("#!/bin/sh\n")
    provider.path(tmp_path).chmod(0o755)
    mirror = provider_mirror(REPO / "tools", tmp_path, pins)
    for host in PROVIDER_HOSTS:
        entry = mirror / host / "gavinbunney/kubectl/1.19.0/linux_amd64"
        binary = entry / "terraform-provider-kubectl_v1.19.0"
        assert binary.is_file() and binary.stat().st_ino == provider.path(tmp_path).stat().st_ino
    assert provider_mirror(REPO / "tools", tmp_path, pins) == mirror  # again: nothing to do
