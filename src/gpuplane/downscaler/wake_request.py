"""A wake request: the activator's annotation on a Deployment it holds requests for.

The activator may write only this annotation (a ValidatingAdmissionPolicy refuses any
other change from its account); the downscaler, still the only writer of replicas, sees it
through its Deployment watch at once, restores the ledger's count, and clears the
annotation in that same write (and in every write it makes, so a request left from an
earlier episode never wakes a later scale-down)."""

from __future__ import annotations

from datetime import UTC, datetime

WAKE_REQUEST_ANNOTATION = "gpuplane.io/wake-requested"


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
