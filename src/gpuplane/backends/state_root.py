"""Where backends keep per-cluster state: ``$XDG_STATE_HOME/gpuplane`` (or
``~/.local/state/gpuplane``); ``GPUPLANE_STATE`` overrides it through the CLI."""

from __future__ import annotations

import os
from pathlib import Path


def default_state_root() -> Path:
    xdg = os.environ.get("XDG_STATE_HOME")
    base = Path(xdg) if xdg else Path.home() / ".local" / "state"
    return base / "gpuplane"
