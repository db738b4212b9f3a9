"""Dashboard and rule queries as data: every target and variable found and named,
Grafana variables made concrete, report legends and series, broken files named."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from gpuplane.errors import BadInputError
from gpuplane.observability.promql import finite_samples, finite_series
from gpuplane.observability.queries import all_queries, concrete, dashboard_queries
from gpuplane.observability.report import (
    PANELS,
    Query,
    Series,
    legend,
    scrape_interval,
    series_of,
    step_for,
)

REPO = Path(__file__).resolve().parents[3]


def test_variables_become_concrete() -> None:
    assert concrete('rate(x{Hostname=~"$node"}[$__rate_interval])') == 'rate(x{Hostname=~".*"}[1m])'
    assert concrete('x{a=~"${node}"}') == 'x{a=~".*"}'
    assert concrete("sum(x)") == "sum(x)"


def test_dashboard_queries_name_panel_and_variable(tmp_path: Path) -> None:
    board = {
        "templating": {
            "list": [
                {"name": "datasource", "type": "datasource", "query": "prometheus"},
                {"name": "node", "type": "query", "query": {"query": "label_values(up, job)"}},
            ]
        },
        "panels": [
            {"title": "Row", "type": "row", "panels": [
                {"title": "Inner", "targets": [{"refId": "A", "expr": "sum(up)"}]},
            ]},
            {"title": "Top", "targets": [{"refId": "B", "expr": 'up{job=~"$node"}'}]},
        ],
    }  # fmt: skip
    path = tmp_path / "board.json"
    path.write_text(json.dumps(board))
    found = [(q.where, q.expr) for q in dashboard_queries(path)]
    assert found == [
        ('variable "node"', "up"),
        ('panel "Inner" query A', "sum(up)"),
        ('panel "Top" query B', 'up{job=~".*"}'),
    ]


def test_broken_dashboard_is_named_with_its_line(tmp_path: Path) -> None:
    path = tmp_path / "broken.json"
    path.write_text('{\n  "panels": [\n    {"title": }\n  ]\n}\n')
    with pytest.raises(BadInputError, match=r"broken.json:3: not JSON"):
        dashboard_queries(path)


def test_the_repository_dashboards_cover_the_issue() -> None:
    queries = all_queries(REPO / "observability")
    text = "\n".join(q.expr for q in queries)
    for metric in (
        "DCGM_FI_DEV_GPU_UTIL", "DCGM_FI_DEV_FB_USED", "DCGM_FI_DEV_FB_FREE",
        "DCGM_FI_DEV_GPU_TEMP", "DCGM_FI_DEV_POWER_USAGE",
        "gpuplane_downscaler_decisions_total", "gpuplane_downscaler_scaled_down_targets",
        "gpuplane_downscaler_gpus_reclaimed", "gpuplane_downscaler_restores_total",
        "gpuplane_downscaler_wake_seconds_bucket", "gpuplane_downscaler_query_errors_total",
        "http_request_duration_seconds_bucket", "inference_batch_size_sum",
        "inference_startup_phase_seconds", "inference_rejected_total",
    ):  # fmt: skip
        assert metric in text, metric
    sources = {q.source for q in queries}
    assert sources == {"gpu.json", "downscaler.json", "inference.json", "gpuplane.rules.yaml"}
    assert "$" not in text  # every variable replaced


def test_finite_samples_ignore_nan() -> None:
    vector = {"resultType": "vector", "result": [{"value": [1, "NaN"]}, {"value": [1, "2"]}]}
    assert finite_samples(vector) == 1
    assert finite_samples({"resultType": "vector", "result": []}) == 0
    assert finite_samples({"resultType": "scalar", "result": [1, "+Inf"]}) == 0


def test_a_series_counts_with_one_number_anywhere_in_the_range() -> None:
    # A wake's rate: NaN before and after the minute it happened, a number during it.
    woke = {"values": [[1, "NaN"], [2, "0.4"], [3, "NaN"]]}
    never = {"values": [[1, "NaN"], [2, "NaN"]]}
    assert finite_series({"resultType": "matrix", "result": [woke, never]}) == 1
    assert finite_series({"resultType": "matrix", "result": [never]}) == 0
    assert finite_series({"resultType": "matrix", "result": []}) == 0


def test_report_series_and_legends() -> None:
    query = Query("max by (Hostname, gpu) (x)", "{{Hostname}} GPU {{gpu}}")
    matrix = {
        "resultType": "matrix",
        "result": [
            {"metric": {"Hostname": "agent-2", "gpu": "0"}, "values": [[10, "5"], [12, "NaN"]]},
        ],
    }
    (series,) = series_of(query, matrix)
    assert series.name == "agent-2 GPU 0"
    assert series.times == (datetime.fromtimestamp(10, UTC),)
    assert series.values == (5.0,)
    assert legend("{{missing}} total", {}) == "total"
    assert step_for(60, 2.0) == 2.0  # never finer than a scrape
    assert step_for(3000, 2.0) == 10.0  # 300 points
    assert step_for(60) == 15.0  # Prometheus' default scrape interval
    assert scrape_interval("global:\n  scrape_interval: 2s\n") == 2.0
    assert scrape_interval("global:\n  scrape_interval: 1m\n") == 60.0
    assert scrape_interval("global:\n  scrape_interval: 500ms\n") == 15.0
    assert scrape_interval("scrape_configs: []\n") == 15.0
    assert scrape_interval(": not yaml [") == 15.0
    assert len(PANELS) == 4


def test_counter_increases_become_event_moments() -> None:
    times = tuple(datetime.fromtimestamp(t, UTC) for t in (0, 2, 4, 6, 8))
    counter = Series("scale-down", times, (3.0, 3.0, 4.0, 4.0, 6.0), True, events=True)
    assert counter.increases() == (times[2], times[4])
    assert Series("none", (), (), True, events=True).increases() == ()
