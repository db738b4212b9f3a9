"""The wake request between the activator and the downscaler: one annotation on the
Deployment. Both processes read and write the same name and time format from here
while neither imports the other."""

from __future__ import annotations

from datetime import datetime

from gpuplane.shared.kube_time import format_time, parse_time

WAKE_REQUEST_ANNOTATION = "gpuplane.io/wake-requested"
# The activator asks again this often while it holds requests, so a request younger than
# WAKE_REQUEST_FRESH (three repeats) means requests are held right now.
WAKE_REPEAT_SECONDS = 5.0
WAKE_REQUEST_FRESH_SECONDS = 3 * WAKE_REPEAT_SECONDS


def wake_request_value(now: datetime) -> str:
    return format_time(now)


def wake_patch(now: datetime) -> dict[str, object]:
    """The activator's whole write: a merge patch of this one annotation."""
    return {"metadata": {"annotations": {WAKE_REQUEST_ANNOTATION: wake_request_value(now)}}}


def parse_wake_request(annotations: dict[str, str] | None) -> datetime | None:
    """When the wake was asked for; None without the annotation or with a broken value
    (a value that is not a time is no request: nothing to act on)."""
    raw = (annotations or {}).get(WAKE_REQUEST_ANNOTATION)
    if not raw:
        return None
    try:
        return parse_time(raw)
    except ValueError:
        return None
