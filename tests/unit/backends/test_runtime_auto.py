"""``runtime: auto`` resolved from host facts (pure): a GPU host makes the gpu node real, a
host without one the app node; at most one kubelet node; a host that cannot run one, a
platform that declares one, or another cluster holding the kubelet root leave every auto
node KWOK, with the reason said once; explicit runtimes mean exactly what they say; the
resolved platform passes every rule again."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from gpuplane.backends.base import ResolvedPlatform, RuntimeChoice
from gpuplane.backends.local import LocalBackend
from gpuplane.backends.local.backend import save_choices
from gpuplane.backends.local.kubelet.layout import NodeLayout
from gpuplane.backends.local.runtime_choice import HostFacts, resolve_runtimes, resolved_platform
from gpuplane.backends.local.runtime_facts import kubelet_root_holder
from gpuplane.backends.local.state import LocalState
from gpuplane.backends.local.supervisor import Supervisor
from gpuplane.topology import Platform, load_platform

REPO = Path(__file__).resolve().parents[3]
CAPABLE = HostFacts(failed_checks=(), gpus=0, kubelet_root_holder=None)


def default() -> Platform:
    return load_platform(REPO / "platform.yaml")


def runtimes(platform: Platform, facts: HostFacts) -> dict[str, tuple[str, str]]:
    return {c.node: (c.runtime, c.reason) for c in resolve_runtimes(platform, facts)}


def test_the_default_platform_declares_auto() -> None:
    assert [node.name for node in default().auto_nodes] == ["agent-0", "agent-2"]


def test_a_host_without_a_gpu_makes_the_app_node_real() -> None:
    found = runtimes(default(), CAPABLE)
    assert found["agent-0"][0] == "kubelet" and "app node runs for real" in found["agent-0"][1]
    assert found["agent-2"] == ("kwok", "NVML shows no GPU on this host")
    assert found["agent-1"] == ("kwok", "declared")
    assert found["server-0"] == ("kwok", "declared")


def test_a_gpu_host_makes_the_gpu_node_real_and_only_it() -> None:
    found = runtimes(default(), HostFacts((), 2, None))
    assert found["agent-2"][0] == "kubelet" and "NVML shows 2 GPU(s)" in found["agent-2"][1]
    assert found["agent-0"] == ("kwok", "agent-2 is this host's kubelet node (one per host)")


@pytest.mark.parametrize(
    ("facts", "reason"),
    [
        (
            HostFacts(("kubelet.root: running as uid 1000",), 1, None),
            "this host cannot run a kubelet node (kubelet.root: running as uid 1000)",
        ),
        (
            HostFacts((), 1, "/state/gpuplane-it"),
            "this host's kubelet root is held by /state/gpuplane-it (one kubelet node per host)",
        ),
    ],
)
def test_what_holds_the_host_back_leaves_every_auto_node_kwok(
    facts: HostFacts, reason: str
) -> None:
    platform = default()
    choices = resolve_runtimes(platform, facts)
    assert {c.node: c.runtime for c in choices if c.declared == "auto"} == {
        "agent-0": "kwok",
        "agent-2": "kwok",
    }
    # Said once for every node it holds back, as `up` and `status` print it.
    assert ResolvedPlatform(platform, choices).lines() == [
        f"runtime auto -> kwok for agent-0, agent-2: {reason}"
    ]


def test_a_declared_kubelet_node_wins_and_explicit_runtimes_stay() -> None:
    document = default().model_dump(by_alias=True, exclude_none=True)
    document["spec"]["nodes"][2]["runtime"] = "kubelet"  # agent-1, the infra node
    platform = Platform.model_validate(document)
    found = runtimes(platform, HostFacts((), 1, None))
    assert found["agent-1"] == ("kubelet", "declared")
    assert found["agent-0"][0] == found["agent-2"][0] == "kwok"
    assert "agent-1 is declared the kubelet node" in found["agent-2"][1]


def test_the_resolved_platform_has_no_auto_left_and_one_kubelet_node() -> None:
    platform = default()
    resolved = resolved_platform(platform, resolve_runtimes(platform, CAPABLE))
    assert resolved.auto_nodes == ()
    assert [node.name for node in resolved.kubelet_nodes] == ["agent-0"]
    assert {node.name for node in resolved.kwok_nodes} == {"server-0", "agent-1", "agent-2"}


def test_the_kubelet_root_holder_is_read_from_its_owner_file(tmp_path: Path) -> None:
    root = tmp_path / "kubelet"
    assert kubelet_root_holder(tmp_path / "mine", root) is None  # no root at all
    root.mkdir()
    assert kubelet_root_holder(tmp_path / "mine", root) is None  # empty
    (root / ".gpuplane-owner").write_text(str(tmp_path / "mine"))
    assert kubelet_root_holder(tmp_path / "mine", root) is None  # our own
    # Another cluster holds it while its kubelet node runs (a real process, by pid file)...
    node = Supervisor(NodeLayout(tmp_path / "mine", "agent-0").supervised)
    node.directory.mkdir(parents=True)
    node.spawn("kubelet", [sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        assert kubelet_root_holder(tmp_path / "other", root) == str(tmp_path / "mine")
    finally:
        node.stop(("kubelet",), grace=5)
    # ... and not once it stopped: what it left is reclaimable.
    assert kubelet_root_holder(tmp_path / "other", root) is None
    (root / ".gpuplane-owner").unlink()
    (root / "pods").mkdir()
    assert kubelet_root_holder(tmp_path / "mine", root) == "another kubelet"


def test_a_running_cluster_keeps_the_choice_its_up_saved(tmp_path: Path) -> None:
    """LocalBackend.resolve reads back what up saved beside the cluster, so a verb run
    later never decides again (here the saved reason is one the host could never give);
    a saved choice for other declared runtimes is ignored."""
    platform = default()
    backend = LocalBackend(state_root=tmp_path)
    saved = tuple(
        RuntimeChoice(node.name, node.runtime, "kwok", "saved by an earlier up")
        for node in platform.spec.nodes
    )
    save_choices(LocalState(tmp_path, platform.name), saved)
    resolved = backend.resolve(platform)
    assert resolved.choices == saved
    assert resolved.platform.kubelet_nodes == ()
    # The same file for a platform whose agent-0 is now declared kwok: not its choice.
    document = platform.model_dump(by_alias=True, exclude_none=True)
    document["spec"]["nodes"][1]["runtime"] = "kwok"
    changed = Platform.model_validate(document)
    fresh = backend.resolve(changed)
    assert all(choice.reason != "saved by an earlier up" for choice in fresh.choices)


def test_a_platform_without_auto_nodes_resolves_as_declared(tmp_path: Path) -> None:
    document = default().model_dump(by_alias=True, exclude_none=True)
    for node in document["spec"]["nodes"]:
        node["runtime"] = "kwok"
    platform = Platform.model_validate(document)
    resolved = LocalBackend(state_root=tmp_path).resolve(platform)
    assert resolved.platform == platform
    assert {(c.runtime, c.reason) for c in resolved.choices} == {("kwok", "declared")}
    assert resolved.lines() == []
