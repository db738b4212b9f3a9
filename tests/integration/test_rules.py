"""Prometheus rules with Debian's promtool: ``promtool check rules`` and ``promtool test
rules`` (a unit test for every alert, observability/tests); every dashboard and rule
expression parsed by Prometheus' own parser, a broken one named by its panel."""

from __future__ import annotations

import shutil
import subprocess

from gpuplane.observability.promql import parse_checks
from gpuplane.observability.queries import NamedQuery, all_queries
from tests.integration.conftest import REPO

OBSERVABILITY = REPO / "observability"


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    binary = shutil.which("promtool")
    assert binary, "promtool (Debian's prometheus package) is a prerequisite: make prerequisites"
    return subprocess.run(
        [binary, *args], cwd=OBSERVABILITY, capture_output=True, text=True, timeout=120, check=False
    )


def test_rules_are_valid() -> None:
    result = promtool(
        "check", "rules", *sorted(str(p) for p in (OBSERVABILITY / "rules").glob("*.yaml"))
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS: 6 rules found" in result.stdout


def test_every_alert_has_a_passing_unit_test() -> None:
    rules = (OBSERVABILITY / "rules" / "gpuplane.rules.yaml").read_text()
    tests = (OBSERVABILITY / "tests" / "gpuplane.rules.test.yaml").read_text()
    alerts = [
        line.split(":", 1)[1].strip()
        for line in rules.splitlines()
        if line.strip().startswith("- alert:")
    ]
    assert alerts and all(f"alertname: {alert}" in tests for alert in alerts)
    result = promtool("test", "rules", "tests/gpuplane.rules.test.yaml")
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_dashboard_and_rule_query_parses() -> None:
    queries = all_queries(OBSERVABILITY)
    checks = parse_checks(queries)
    assert len(checks) == len(queries) >= 25
    assert all(check.ok for check in checks), [c for c in checks if not c.ok]


def test_a_broken_query_is_named_by_its_panel() -> None:
    good = NamedQuery("gpu.json", 'panel "fine" query A', "sum(up)")
    bad = NamedQuery("gpu.json", 'panel "broken" query A', "sum(rate(up[1m])")
    checks = parse_checks([good, bad, good])
    assert [check.ok for check in checks] == [True, False, True]
    assert checks[1].query.where == 'panel "broken" query A'
    assert "unclosed left parenthesis" in checks[1].detail
