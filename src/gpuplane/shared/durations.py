"""Durations as people write them: ``90s``, ``15m``, ``1h30m`` (pure).

One parser for the policy spec and the CLI. Bounded: at most a year, so a typo of many
digits is a clear error rather than an overflow deep inside ``timedelta``.
"""

from __future__ import annotations

import re
from datetime import timedelta

from gpuplane.shared.quoting import quoted

PATTERN = re.compile(r"(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?")
LONGEST = timedelta(days=366)
EXAMPLES = "15s, 10m or 1h30m"


def parse_duration(text: str) -> timedelta:
    """The duration ``text`` names; ValueError saying what is wrong (value quoted, bounded)."""
    match = PATTERN.fullmatch(text) if len(text) <= 32 else None
    if not text or match is None:
        raise ValueError(f"{quoted(text)} is not a duration like {EXAMPLES}")
    hours, minutes, seconds = (int(part or 0) for part in match.groups())
    total = hours * 3600 + minutes * 60 + seconds
    if total > LONGEST.total_seconds():
        raise ValueError(f"{quoted(text)} is longer than {LONGEST.days} days")
    return timedelta(seconds=total)
