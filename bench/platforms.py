"""The repository's platform.yaml as benchmarks use it: every ``runtime: auto`` pinned to
KWOK (a bench measures what it names, not whatever this host resolves), under a name."""

from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def kwok_platform(target: Path, name: str | None = None) -> Path:
    """Write the pinned platform to ``target`` and return it."""
    text = (REPO / "platform.yaml").read_text().replace("runtime: auto", "runtime: kwok")
    if name is not None:
        text = text.replace("name: gpuplane", f"name: {name}", 1)
    target.write_text(text)
    return target
