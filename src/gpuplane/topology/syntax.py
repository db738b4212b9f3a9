"""Kubernetes syntax rules for names, label keys/values and taints, as pure functions.

Each ``*_problem`` function returns ``None`` when the input is valid, or a sentence saying
what is wrong, so the same rule serves the pydantic model and anyone else.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from gpuplane.shared.quoting import quoted

# The regular expressions below are the ones the API server applies
# (k8s.io/apimachinery/pkg/util/validation), restated here.
_DNS1123_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
_DNS1123_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
_QUALIFIED_NAME = re.compile(r"([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]")
_TAINT = re.compile(r"(?P<key>[^=:\s]+)(=(?P<value>[^:\s]*))?:(?P<effect>[A-Za-z]+)")

TaintEffect = Literal["NoSchedule", "PreferNoSchedule", "NoExecute"]
TAINT_EFFECTS: tuple[TaintEffect, ...] = ("NoSchedule", "PreferNoSchedule", "NoExecute")


@dataclass(frozen=True)
class Taint:
    """A parsed node taint, in the shape the Node API uses."""

    key: str
    value: str
    effect: TaintEffect

    def __str__(self) -> str:
        return (
            f"{self.key}={self.value}:{self.effect}" if self.value else f"{self.key}:{self.effect}"
        )


def dns_label_problem(name: str) -> str | None:
    """Why ``name`` is not an RFC 1123 label (node and cluster names), or None."""
    if len(name) > 63:
        return f"{quoted(name)} is longer than 63 characters"
    if not _DNS1123_LABEL.fullmatch(name):
        return (
            f"{quoted(name)} must consist of lower case alphanumerics or '-', "
            "and start and end with an alphanumeric"
        )
    return None


def label_key_problem(key: str) -> str | None:
    """Why ``key`` is not a valid label (or taint) key, or None."""
    prefix, _, name = key.rpartition("/")
    if "/" in key and not prefix:
        return f"label key {quoted(key)} has an empty prefix before '/'"
    if prefix and (len(prefix) > 253 or not _DNS1123_SUBDOMAIN.fullmatch(prefix)):
        return f"label key {quoted(key)}: prefix {quoted(prefix)} must be a DNS subdomain"
    if not name:
        return f"label key {quoted(key)} has an empty name"
    if len(name) > 63:
        return f"label key {quoted(key)}: name part is longer than 63 characters"
    if not _QUALIFIED_NAME.fullmatch(name):
        return (
            f"label key {quoted(key)}: name part must consist of alphanumerics, '-', '_' or '.', "
            "and start and end with an alphanumeric"
        )
    return None


def label_value_problem(value: str) -> str | None:
    """Why ``value`` is not a valid label (or taint) value, or None."""
    if value == "":
        return None
    if len(value) > 63:
        return f"label value {quoted(value)} is longer than 63 characters"
    if not _QUALIFIED_NAME.fullmatch(value):
        return (
            f"label value {quoted(value)} must consist of alphanumerics, '-', '_' or '.', "
            "and start and end with an alphanumeric"
        )
    return None


def parse_taint(text: str) -> Taint:
    """Parse ``key=value:Effect`` (or ``key:Effect``); raise ValueError saying what is wrong."""
    match = _TAINT.fullmatch(text)
    if match is None:
        raise ValueError(f"malformed taint {quoted(text)}: expected key=value:Effect")
    key, value = match["key"], match["value"] or ""
    effect = next((e for e in TAINT_EFFECTS if e == match["effect"]), None)
    if effect is None:
        raise ValueError(
            f"taint {quoted(text)}: effect {quoted(match['effect'])} is not one of "
            f"{', '.join(TAINT_EFFECTS)}"
        )
    for problem in (label_key_problem(key), label_value_problem(value)):
        if problem is not None:
            raise ValueError(f"taint {quoted(text)}: {problem}")
    return Taint(key=key, value=value, effect=effect)
