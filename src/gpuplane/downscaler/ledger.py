"""The ledger of original replica counts (pure rules).

The original count is written (annotation on the Deployment, then policy status)
BEFORE scaling down, and is what restore returns to. A Deployment already at 0 is
never recorded, and a recorded original is only replaced by a larger count, so a
restart or a retry can never shrink or zero it (kube-downscaler#40, #44).
"""

from __future__ import annotations

ANNOTATION = "gpuplane.io/original-replicas"
# The annotation is writable by anyone who may edit the Deployment: a hand-set 10,000
# must not become what a restore scales a GPU Deployment to. Larger values are ignored.
MAX_RECORDED_REPLICAS = 1000


def parse_annotation(annotations: dict[str, str] | None) -> int | None:
    raw = (annotations or {}).get(ANNOTATION)
    if raw is None:
        return None
    try:
        value = int(raw)
    except ValueError:
        return None
    return value if 0 < value <= MAX_RECORDED_REPLICAS else None


def ledger_value(annotation: int | None, status: int | None) -> int | None:
    """The recorded original: the policy's status first (only the operator writes it, the
    status subresource), the annotation where the status has none (a policy recreated,
    its status lost); the annotation travels with the Deployment for that."""
    return status if status is not None else annotation


def value_to_record(current_replicas: int, recorded: int | None) -> int | None:
    """What to write before scaling down, or None to leave the ledger as it is."""
    if current_replicas <= 0:
        return None
    if recorded is not None and current_replicas <= recorded:
        return None
    return current_replicas


def restore_target(recorded: int | None) -> int | None:
    """Restore returns exactly the recorded count."""
    return recorded if recorded is not None and recorded > 0 else None
