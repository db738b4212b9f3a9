"""Which real node the demo's wake acts run the real services on, and under which
Deployment names (read from apps/inference and apps/llm, so a renamed manifest cannot
drift)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from gpuplane.simulation.chat_wake_story import choose_chat_variant
from gpuplane.simulation.wake_story import Variant, choose_variant, routes
from gpuplane.topology.loader import parse_platform

REPO = Path(__file__).resolve().parents[3]
INFERENCE = REPO / "apps" / "inference"
LLM = REPO / "apps" / "llm"


def platform_with(kubelet: str | None) -> str:
    document = yaml.safe_load((REPO / "platform.yaml").read_text())
    for node in document["spec"]["nodes"]:
        if node["name"] == kubelet:
            node["runtime"] = "kubelet"
    return yaml.safe_dump(document)


@pytest.mark.parametrize(
    ("kubelet", "expected"),
    [
        (None, None),
        ("agent-0", Variant("agent-0", "server-cpu.yaml", "inference-cpu")),
        ("agent-2", Variant("agent-2", "server-gpu.yaml", "inference")),
    ],
)
def test_the_variant_follows_the_real_node(kubelet: str | None, expected: Variant | None) -> None:
    platform = parse_platform(platform_with(kubelet), REPO / "platform.yaml")
    assert choose_variant(platform, INFERENCE) == expected


def test_the_activator_routes_to_the_variants_pods() -> None:
    (backend,) = routes(Variant("agent-0", "server-cpu.yaml", "inference-cpu"))
    assert backend["deployment"] == "inference-cpu" and backend["service"] == "inference"
    assert backend["upstream"] == "endpoints:8000"  # no kube-proxy on the local backend


@pytest.mark.parametrize(
    ("kubelet", "on_app_node", "expected", "why"),
    [
        (None, True, None, "every node is KWOK"),
        ("agent-0", False, None, "plays with --chat"),
        ("agent-0", True, Variant("agent-0", "server-cpu.yaml", "llm-cpu"), ""),
        ("agent-2", False, Variant("agent-2", "server-gpu.yaml", "llm"), ""),
        ("agent-2", True, Variant("agent-2", "server-gpu.yaml", "llm"), ""),
    ],
)
def test_the_chat_act_plays_on_a_real_gpu_node_and_on_the_app_node_when_asked(
    kubelet: str | None, on_app_node: bool, expected: Variant | None, why: str
) -> None:
    platform = parse_platform(platform_with(kubelet), REPO / "platform.yaml")
    variant, reason = choose_chat_variant(platform, LLM, on_app_node=on_app_node)
    assert variant == expected
    assert why in reason and bool(reason) == (expected is None)
