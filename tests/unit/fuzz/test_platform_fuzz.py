"""platform.yaml fuzzed: mutations of the default file and arbitrary text are either a
Platform or a TopologyError (exit 2) with bounded messages; never another exception."""

from __future__ import annotations

from pathlib import Path

import yaml
from hypothesis import given
from hypothesis import strategies as st

from gpuplane.topology.loader import TopologyError, parse_platform
from tests.unit.fuzz.strategies import mutated

REPO = Path(__file__).resolve().parents[3]
FILE = REPO / "platform.yaml"
DEFAULT = yaml.safe_load(FILE.read_text())
# A message names file, line, node and field and quotes at most 80 characters of a value.
LONGEST_MESSAGE = 600


def outcome(text: str) -> None:
    try:
        parse_platform(text, FILE)
    except TopologyError as error:
        assert error.lines, "a rejection names at least one problem"
        for problem in error.lines:
            assert len(problem) <= LONGEST_MESSAGE, problem[:200]


@given(mutated(DEFAULT))
def test_mutations_of_the_default_platform(document: dict[str, object]) -> None:
    outcome(yaml.safe_dump(document))


@given(st.text(max_size=2000))
def test_arbitrary_text(text: str) -> None:
    outcome(text)


@given(st.integers(min_value=1, max_value=200), st.sampled_from(["[", "{a: ", "- "]))
def test_deep_nesting_is_bad_input(depth: int, opener: str) -> None:
    outcome("spec:\n  nodes: " + opener * depth)
