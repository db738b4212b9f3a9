"""Every key of our charts' values.yaml carries a comment: on the line above it (comment
lines may stack) or at the end of its own line. List items belong to their key."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]
KEY = re.compile(r"^(?P<indent>\s*)(?P<key>[\w.-]+):")


def undocumented(text: str) -> list[str]:
    missing = []
    previous = ""
    list_indent: int | None = None  # inside a list item: its keys are the item's
    for number, line in enumerate(text.splitlines(), start=1):
        indent = len(line) - len(line.lstrip())
        if line.lstrip().startswith("- "):
            list_indent = indent
        elif line.strip() and list_indent is not None and indent <= list_indent:
            list_indent = None
        match = KEY.match(line)
        if match and list_indent is None:
            commented = previous.lstrip().startswith("#") or " # " in line
            if not commented:
                missing.append(f"{number}: {match.group('key')}")
        if line.strip():
            previous = line
    return missing


@pytest.mark.parametrize("chart", ["charts/downscaler", "observability"])
def test_every_value_is_commented(chart: str) -> None:
    text = (REPO / chart / "values.yaml").read_text()
    assert undocumented(text) == []


def test_the_rule_catches_a_bare_key() -> None:
    text = "# about a\na: 1\nb: 2\nc: 3  # about c\n# about d\nd:\n  - e: 1\n    f: 2\ng: 3\n"
    assert undocumented(text) == ["3: b", "9: g"]
