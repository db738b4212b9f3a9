"""Which real node the demo's wake act runs the real service on, and under which
Deployment name (read from apps/inference, so a renamed manifest cannot drift)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from gpuplane.simulation.wake_story import Variant, choose_variant, routes
from gpuplane.topology.loader import parse_platform

REPO = Path(__file__).resolve().parents[3]
INFERENCE = REPO / "apps" / "inference"


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
