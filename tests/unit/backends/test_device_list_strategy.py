"""The device plugin's device-list strategy as each backend renders it: ``cdi-cri`` with the
host's hook path on the local backend's kubelet gpu node, the plugin's default (envvar) on
k3d; and the DaemonSet mounts the CDI strategy reads and writes through."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from gpuplane.backends.gpu_enablement import (
    CONFIG_MAP,
    CONTAINER_DRIVER_ROOT,
    PLUGIN_CDI_SPEC_NAME,
    PLUGIN_DAEMONSET,
    enablement_documents,
)
from gpuplane.backends.local.kubelet.layout import CDI_SPEC_DIRS, PLUGIN_CDI_SPEC
from gpuplane.topology import load_platform

REPO = Path(__file__).resolve().parents[3]
HOOK = Path("/home/me/.cache/gpuplane/bin/nvidia-toolkit-v1.20.2/nvidia-cdi-hook")


def rendered(cdi_hook: Path | None) -> tuple[dict[str, Any], dict[str, Any]]:
    """The plugin's config file and its DaemonSet, as applied."""
    documents = enablement_documents(
        REPO, load_platform(REPO / "platform.yaml"), plugin_image="plugin:v0", cdi_hook=cdi_hook
    )
    config_map = next(d for d in documents if d["metadata"]["name"] == CONFIG_MAP)
    daemonset = next(d for d in documents if d["metadata"]["name"] == PLUGIN_DAEMONSET)
    return yaml.safe_load(config_map["data"]["config.yaml"]), daemonset


def test_the_kubelet_gpu_node_gets_cdi_cri_with_the_hosts_hook() -> None:
    config, _ = rendered(HOOK)
    assert config["flags"]["plugin"] == {
        "deviceListStrategy": "cdi-cri",
        "nvidiaCTKPath": str(HOOK),
        "containerDriverRoot": CONTAINER_DRIVER_ROOT,
    }
    # Host paths in the spec, though the plugin reads the driver under /driver-root.
    assert config["flags"]["nvidiaDriverRoot"] == "/"


def test_without_a_hook_the_plugin_keeps_its_default_strategy() -> None:
    config, _ = rendered(None)
    assert "plugin" not in config["flags"]
    assert "nvidiaDriverRoot" not in config["flags"]


def test_the_strategy_change_rolls_the_plugin() -> None:
    hashes = {
        rendered(hook)[1]["spec"]["template"]["metadata"]["annotations"]["gpuplane.io/config-hash"]
        for hook in (None, HOOK)
    }
    assert len(hashes) == 2


def test_the_daemonset_mounts_the_driver_root_read_only_and_the_cdi_spec_directory() -> None:
    _, daemonset = rendered(HOOK)
    pod = daemonset["spec"]["template"]["spec"]
    volumes = {v["name"]: v for v in pod["volumes"]}
    mounts = {m["name"]: m for m in pod["containers"][0]["volumeMounts"]}
    assert volumes["driver-root"]["hostPath"]["path"] == "/"
    assert mounts["driver-root"] == {
        "name": "driver-root", "mountPath": CONTAINER_DRIVER_ROOT, "readOnly": True
    }  # fmt: skip
    # Where the plugin writes its spec is where containerd reads specs, and what down removes.
    assert volumes["cdi-specs"]["hostPath"]["path"] == mounts["cdi-specs"]["mountPath"]
    assert Path(mounts["cdi-specs"]["mountPath"]) in CDI_SPEC_DIRS
    assert Path(mounts["cdi-specs"]["mountPath"]) / PLUGIN_CDI_SPEC_NAME == PLUGIN_CDI_SPEC
    # Still unprivileged: the CDI strategy needs no capability.
    security = pod["containers"][0]["securityContext"]
    assert security["capabilities"] == {"drop": ["ALL"]} and "privileged" not in security
