"""The report's honesty rules, as data: a panel with no series is left out with its own
one-line reason (never drawn as an empty "no data" box), and a simulated panel says so
in its title."""

from __future__ import annotations

from datetime import UTC, datetime

from gpuplane.observability.report import PANELS, Panel, Series, left_out

T0 = datetime(2026, 12, 5, tzinfo=UTC)


def series(name: str) -> Series:
    return Series(name, (T0,), (1.0,), step_chart=False)


def test_empty_panels_are_left_out_with_their_reason() -> None:
    gpu, allocation, downscaler, latency = PANELS
    panels = [
        Panel(gpu, (series("agent-2 GPU 0"),), simulated=True),
        Panel(allocation, (series("allocated"),), simulated=True),
        Panel(downscaler, (series("targets scaled down"),)),
        Panel(latency, ()),
    ]
    assert left_out(panels) == [
        "Inference latency (embeddings API): no embeddings service answered in this window "
        "(the demo runs the real service only where a node is a kubelet node)"
    ]
    assert panels[0].title == "GPU utilisation per GPU (SIMULATED series)"
    assert panels[2].title == "Downscaler actions"


def test_every_gpu_panel_can_tell_simulated_series() -> None:
    gpu_panels = [spec for spec in PANELS if "DCGM_FI_DEV" in spec.queries[0].expr]
    assert gpu_panels and all(spec.simulated_when for spec in gpu_panels)
    assert all('simulated="true"' in (spec.simulated_when or "") for spec in gpu_panels)
