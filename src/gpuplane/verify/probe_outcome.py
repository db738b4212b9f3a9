"""Decide a probe's result from what its pods did so far (pure, so it is unit-tested)."""

from __future__ import annotations

from dataclasses import dataclass

from gpuplane.verify.model import CheckResult, failed, passed
from gpuplane.verify.probes import Expect, Probe


@dataclass(frozen=True)
class PodObservation:
    node: str | None = None
    scheduling_failure: str | None = None  # latest FailedScheduling message


def decide(
    probe: Probe, seen: dict[str, PodObservation], *, final: bool, waited: float
) -> CheckResult | None:
    """The result, or None while undecided (``final`` forces a decision: the wait is over)."""
    observations = {name: seen.get(name, PodObservation()) for name in probe.pod_names}
    if probe.expect is Expect.BOUND:
        return _decide_bound(probe, observations, final=final, waited=waited)
    return _decide_pending(probe, observations, final=final, waited=waited)


def _decide_bound(
    probe: Probe, observations: dict[str, PodObservation], *, final: bool, waited: float
) -> CheckResult | None:
    allowed = ", ".join(sorted(probe.allowed_nodes))
    wrong = [
        f"pod {name} was bound to {seen.node}, expected one of {allowed}"
        for name, seen in observations.items()
        if seen.node is not None and seen.node not in probe.allowed_nodes
    ]
    if wrong:
        return failed(probe.id, probe.description, *wrong)
    unbound = {name: seen for name, seen in observations.items() if seen.node is None}
    if not unbound:
        nodes = sorted({seen.node for seen in observations.values() if seen.node})
        return passed(
            probe.id, probe.description, f"{len(observations)} pod(s) bound to {', '.join(nodes)}"
        )
    if not final:
        return None
    return failed(
        probe.id,
        probe.description,
        *(
            f"pod {name} not bound after {waited:.0f}s"
            + (
                f": {seen.scheduling_failure}"
                if seen.scheduling_failure
                else " (no scheduling event)"
            )
            for name, seen in unbound.items()
        ),
    )


def _decide_pending(
    probe: Probe, observations: dict[str, PodObservation], *, final: bool, waited: float
) -> CheckResult | None:
    evidence, problems = [], []
    for name, seen in observations.items():
        if seen.node is not None:
            problems.append(f"pod {name} was bound to {seen.node}; it should have stayed Pending")
        elif seen.scheduling_failure and probe.pending_reason in seen.scheduling_failure:
            evidence.append(f"pod {name} Pending: {seen.scheduling_failure}")
        elif final:
            got = seen.scheduling_failure or "no FailedScheduling event"
            problems.append(
                f"pod {name}: expected a FailedScheduling event with {probe.pending_reason!r} "
                f"within {waited:.0f}s, got: {got}"
            )
        else:
            return None
    if problems:
        return failed(probe.id, probe.description, *problems)
    return passed(
        probe.id, probe.description, *evidence, *([probe.context] if probe.context else [])
    )
