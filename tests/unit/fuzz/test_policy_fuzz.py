"""A DownscalePolicy spec fuzzed as the operator parses it: every mutation of a valid spec
is a Policy or one of the errors the daemon turns into Ready=False (never an exception
that would crash-loop it); durations and Prometheus answers likewise."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gpuplane.downscaler.handlers import POLICY_ERRORS
from gpuplane.downscaler.policy import parse_policy, selector_matches
from gpuplane.downscaler.prometheus import answer_of
from gpuplane.shared.durations import LONGEST, parse_duration
from tests.unit.fuzz.strategies import json_like, mutated

SPEC = {
    "selector": {
        "matchLabels": {"app.kubernetes.io/part-of": "inference"},
        "matchExpressions": [{"key": "tier", "operator": "In", "values": ["gpu"]}],
    },
    "interval": "15s",
    "idleFor": "10m",
    "gracePeriod": "15m",
    "signals": [{"name": "requests", "query": "sum by (deployment) (x)", "idleBelow": 0.05}],
    "wake": {"query": "sum by (deployment) (y)", "above": 0},
    "onMetricsLoss": {"action": "Restore", "after": "5m"},
    "dryRun": False,
}


@given(mutated(SPEC))
def test_mutated_specs_parse_or_are_invalid(spec: dict[str, object]) -> None:
    try:
        policy = parse_policy(spec)
    except POLICY_ERRORS as error:
        assert len(str(error)) <= 600
        return
    # A policy it accepts is one a cycle can run: signals, a positive interval, idleFor
    # at least the interval, and a selector that evaluates.
    assert policy.signals and policy.interval > timedelta(0)
    assert policy.idle_for >= policy.interval
    selector_matches(policy, {"tier": "gpu"})


@given(st.dictionaries(st.text(max_size=12), json_like, max_size=6))
def test_arbitrary_specs(spec: dict[str, object]) -> None:
    with pytest.raises(POLICY_ERRORS):
        parse_policy(spec)  # no signals: never usable


@given(st.text(max_size=60))
def test_durations_parse_or_say_why(text: str) -> None:
    try:
        parsed = parse_duration(text)
    except ValueError as error:
        assert len(str(error)) <= 200
        return
    assert timedelta(0) <= parsed <= LONGEST


@given(
    st.integers(min_value=0, max_value=99),
    st.integers(min_value=0, max_value=59),
    st.integers(min_value=0, max_value=59),
)
def test_durations_round_trip(hours: int, minutes: int, seconds: int) -> None:
    text = f"{hours}h{minutes}m{seconds}s"
    assert parse_duration(text) == timedelta(hours=hours, minutes=minutes, seconds=seconds)


@given(st.integers(min_value=100, max_value=599), st.text(max_size=300))
def test_prometheus_answers_of_any_text(status: int, text: str) -> None:
    answer = answer_of(status, text, "deployment")
    # Values only from a 200 that is a success vector; anything else names its error.
    assert answer.error is not None or (status == 200 and text.lstrip().startswith("{"))


@given(st.integers(min_value=100, max_value=599), json_like)
def test_prometheus_answers_of_any_json(status: int, payload: object) -> None:
    plain = answer_of(status, json.dumps(payload), "deployment")
    assert plain.error is not None or status == 200
    shaped = {"status": "success", "data": {"resultType": "vector", "result": payload}}
    answer = answer_of(status, json.dumps(shaped), "deployment")
    assert answer.error is not None or status == 200
    assert all(isinstance(value, float) for value, _ in answer.values.values())
