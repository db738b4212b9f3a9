"""Check results and the report they make up (the JSON schema is documented in docs/verify.md)."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

# 2: the status "simulated" and its count in the summary.
SCHEMA_VERSION = 2


class Status(StrEnum):
    PASSED = "passed"
    FAILED = "failed"
    SKIPPED = "skipped"
    # The check held, but only over values the local backend itself wrote from
    # platform.yaml (a KWOK gpu node's capacity and labels): not evidence of real GPUs.
    SIMULATED = "simulated"


@dataclass(frozen=True)
class CheckResult:
    id: str
    description: str
    status: Status
    evidence: tuple[str, ...] = ()
    reason: str = ""
    duration_seconds: float = 0.0


def passed(check_id: str, description: str, *evidence: str) -> CheckResult:
    return CheckResult(check_id, description, Status.PASSED, tuple(evidence))


def failed(check_id: str, description: str, *evidence: str) -> CheckResult:
    return CheckResult(check_id, description, Status.FAILED, tuple(evidence))


def skipped(check_id: str, description: str, reason: str) -> CheckResult:
    return CheckResult(check_id, description, Status.SKIPPED, reason=reason)


def as_simulated(check: CheckResult, reason: str) -> CheckResult:
    """A check that passed over simulated values says so; a failure stays a failure (the
    backend wrote what platform.yaml did not declare)."""
    if check.status is not Status.PASSED:
        return check
    return CheckResult(
        check.id,
        check.description,
        Status.SIMULATED,
        check.evidence,
        reason,
        check.duration_seconds,
    )


def verdict(check_id: str, description: str, problems: list[str], ok: list[str]) -> CheckResult:
    """Failed with ``problems`` as evidence if there are any, else passed with ``ok``."""
    if problems:
        return failed(check_id, description, *problems)
    return passed(check_id, description, *ok)


@dataclass(frozen=True)
class Report:
    platform: str
    kubeconfig: str
    simulated: bool
    checks: tuple[CheckResult, ...]
    duration_seconds: float
    probe_namespace: str | None = None
    notes: tuple[str, ...] = field(default_factory=tuple)

    def count(self, status: Status) -> int:
        return sum(check.status is status for check in self.checks)

    @property
    def ok(self) -> bool:
        return self.count(Status.FAILED) == 0

    def summary_line(self) -> str:
        line = (
            f"{self.count(Status.PASSED)} passed, {self.count(Status.FAILED)} failed, "
            f"{self.count(Status.SKIPPED)} skipped"
        )
        simulated = self.count(Status.SIMULATED)
        return line + (f", {simulated} simulated (not counted as passed)" if simulated else "")
