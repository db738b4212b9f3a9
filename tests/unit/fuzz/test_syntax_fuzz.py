"""Taint syntax fuzzed: any text is a Taint or a ValueError with a bounded message, and
every well-formed taint reads back as itself."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from gpuplane.topology.syntax import TAINT_EFFECTS, parse_taint

label_part = st.from_regex(r"\A[a-z0-9]([a-z0-9.-]{0,20}[a-z0-9])?\Z")


@given(st.text(max_size=300))
def test_any_text(text: str) -> None:
    try:
        parse_taint(text)
    except ValueError as error:
        assert len(str(error)) <= 400


@given(label_part, st.one_of(st.just(""), label_part), st.sampled_from(TAINT_EFFECTS))
def test_well_formed_taints_read_back(key: str, value: str, effect: str) -> None:
    text = f"{key}={value}:{effect}" if value else f"{key}:{effect}"
    assert str(parse_taint(text)) == text
