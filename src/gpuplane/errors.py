"""The one family of expected failures, each carrying the exit code it maps to.

Every layer raises these; only the CLI's top-level handler turns them into a message
and an exit code, so library code never calls ``sys.exit``.
"""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    """Process exit codes shared by every verb (documented in the README)."""

    OK = 0
    CHECKS_FAILED = 1
    BAD_INPUT = 2
    MISSING_PREREQUISITE = 3
    # A bug in gpuplane: an exception nobody expected (the traceback goes to a file).
    INTERNAL_ERROR = 4


class GpuplaneError(Exception):
    """An expected failure: a one-line message for people and an exit code."""

    exit_code: ExitCode = ExitCode.CHECKS_FAILED


class BadInputError(GpuplaneError):
    """The user gave us something we cannot use (a broken file, a wrong flag)."""

    exit_code = ExitCode.BAD_INPUT


class PrerequisiteError(GpuplaneError):
    """Something the host must provide is missing (Go, a binary, a running cluster)."""

    exit_code = ExitCode.MISSING_PREREQUISITE


class OperationError(GpuplaneError):
    """An operation ran and failed (a build, a cluster start, a check)."""

    exit_code = ExitCode.CHECKS_FAILED
