"""Kubernetes' two time formats, written and read in one place: ``Time`` (RFC 3339 to the
second, UTC, as creationTimestamp and our annotations carry it) and ``MicroTime`` (to the
microsecond, as a Lease's renewTime must be)."""

from __future__ import annotations

from datetime import UTC, datetime


def format_time(moment: datetime) -> str:
    """``Time``: seconds, UTC, ``Z``; the inverse of ``parse_time``."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def format_micro_time(moment: datetime) -> str:
    """``MicroTime``: microseconds, UTC, ``Z``."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_time(text: str | None) -> datetime | None:
    """Either format (or any RFC 3339 time) as an aware UTC datetime; None for none.
    A value without a zone is read as UTC. ValueError for text that is not a time."""
    if not text:
        return None
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)
