"""The wake request between the activator and the downscaler: one annotation on the
Deployment. A leaf module (no gpuplane import), so both processes read and write the
same name and time format while neither imports the other."""

from __future__ import annotations

from datetime import UTC, datetime

WAKE_REQUEST_ANNOTATION = "gpuplane.io/wake-requested"


def wake_request_value(now: datetime) -> str:
    return now.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_wake_request(annotations: dict[str, str] | None) -> datetime | None:
    """When the wake was asked for; None without the annotation or with a broken value
    (a value that is not a time is no request: nothing to act on)."""
    raw = (annotations or {}).get(WAKE_REQUEST_ANNOTATION)
    if not raw:
        return None
    try:
        moment = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)
