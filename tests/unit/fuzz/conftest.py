"""Hypothesis profiles for the parser fuzz tests.

``bounded`` (the default, inside ``make test``): a fixed number of examples per target,
derandomized so every run tries the same inputs and takes seconds. ``long``: many more,
random each run: ``GPUPLANE_FUZZ=long .venv/bin/pytest tests/unit/fuzz -q`` (README,
"Bad input").
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

settings.register_profile(
    "bounded",
    max_examples=100,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile(
    "long",
    max_examples=5000,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.load_profile(os.environ.get("GPUPLANE_FUZZ", "bounded"))
