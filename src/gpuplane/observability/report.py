"""``gpuplane report``: the main panels from Prometheus to a PNG, for hosts without Grafana.

Four panels share one time axis: GPU utilisation per GPU, GPUs allocated against the
total, the downscaler's actions (ScaledDown targets, GPUs reclaimed, scale-downs and
restores), and the inference service's p50/p99 latency. The queries follow the GPU,
Downscaler and Inference dashboards without their Grafana variables; the downscaler's
counters become markers where they went up.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

from gpuplane.errors import OperationError
from gpuplane.observability import promql
from gpuplane.observability.promql import api_get
from gpuplane.shared.durations import parse_duration

LEGEND_LABEL = re.compile(r"\{\{\s*(\w+)\s*\}\}")
ALLOCATED = 'count(DCGM_FI_DEV_GPU_UTIL{pod!=""}) or (count(DCGM_FI_DEV_GPU_UTIL) * 0)'
SIMULATED_GPUS = 'count(DCGM_FI_DEV_GPU_UTIL{simulated="true"})'
EMBEDDINGS_LATENCY = (
    "histogram_quantile({q}, sum by (deployment, le) "
    '(rate(http_request_duration_seconds_bucket{{path="/v1/embeddings"}}[1m])))'
)
POINTS = 300  # per series: enough for a 1,600 px wide figure
# What Prometheus scrapes at when it does not say (its own default): a step finer than
# the scrape interval only repeats points.
DEFAULT_SCRAPE_SECONDS = 15.0


@dataclass(frozen=True)
class Query:
    expr: str
    legend: str  # Grafana-style: "{{Hostname}} GPU {{gpu}}"
    step_chart: bool = False  # counts that change in steps
    events: bool = False  # a counter: drawn as a marker wherever it went up


@dataclass(frozen=True)
class PanelSpec:
    title: str
    unit: str
    queries: tuple[Query, ...]
    y_max: float | None = None  # a fixed top (percentages); None: from the data
    whole_numbers: bool = False  # counts of GPUs and targets: no 0.2-GPU ticks
    # A query with a result wherever the panel's series were simulated in the window.
    simulated_when: str | None = None
    # Why the panel can be empty: it is then left out of the picture with this line.
    empty_because: str = "no series in this window"


@dataclass(frozen=True)
class Series:
    name: str
    times: tuple[datetime, ...]
    values: tuple[float, ...]
    step_chart: bool
    events: bool = False

    def increases(self) -> tuple[datetime, ...]:
        """When a counter series went up (the first point has nothing to compare with)."""
        return tuple(
            self.times[index]
            for index in range(1, len(self.values))
            if self.values[index] > self.values[index - 1]
        )


@dataclass(frozen=True)
class Panel:
    spec: PanelSpec
    series: tuple[Series, ...]
    simulated: bool = False

    @property
    def title(self) -> str:
        return self.spec.title + (" (SIMULATED series)" if self.simulated else "")


PANELS = (
    PanelSpec(
        "GPU utilisation per GPU",
        "%",
        (Query("max by (Hostname, gpu) (DCGM_FI_DEV_GPU_UTIL)", "{{Hostname}} GPU {{gpu}}"),),
        y_max=100,
        simulated_when=SIMULATED_GPUS,
        empty_because="no GPU series in this window (no gpu node, or no exporter scraped)",
    ),
    PanelSpec(
        "GPU allocation",
        "GPUs",
        (
            # 0 only while GPUs report at all: no line before the cluster existed.
            Query(ALLOCATED, "allocated", True),
            Query("count(DCGM_FI_DEV_GPU_UTIL)", "total", True),
        ),
        whole_numbers=True,
        simulated_when=SIMULATED_GPUS,
        empty_because="no GPU series in this window (no gpu node, or no exporter scraped)",
    ),
    PanelSpec(
        "Downscaler actions",
        "count",
        (
            Query("sum(gpuplane_downscaler_scaled_down_targets)", "targets scaled down", True),
            Query("sum(gpuplane_downscaler_gpus_reclaimed)", "GPUs reclaimed", True),
            Query("sum(gpuplane_downscaler_scale_downs_total)", "scale-down", events=True),
            Query("sum(gpuplane_downscaler_restores_total)", "restore", events=True),
        ),
        whole_numbers=True,
    ),
    PanelSpec(
        "Inference latency (embeddings API)",
        "s",
        (
            Query(EMBEDDINGS_LATENCY.format(q="0.5"), "{{deployment}} p50"),
            Query(EMBEDDINGS_LATENCY.format(q="0.99"), "{{deployment}} p99"),
        ),
        empty_because="no embeddings service answered in this window (the demo runs the real "
        "service only where a node is a kubelet node)",
    ),
)


def step_for(seconds: float, scrape_seconds: float = DEFAULT_SCRAPE_SECONDS) -> float:
    return max(scrape_seconds, seconds / POINTS)


def scrape_interval(config_yaml: str) -> float:
    """The global scrape interval of a Prometheus configuration (as /api/v1/status/config
    gives it), or the default when it names none or one finer than a second."""
    try:
        document = yaml.safe_load(config_yaml) or {}
        text = str((document.get("global") or {}).get("scrape_interval", ""))
        return parse_duration(text).total_seconds() or DEFAULT_SCRAPE_SECONDS
    except (yaml.YAMLError, AttributeError, ValueError):
        return DEFAULT_SCRAPE_SECONDS


def legend(template: str, labels: dict[str, str]) -> str:
    return LEGEND_LABEL.sub(lambda match: labels.get(match.group(1), ""), template).strip()


def series_of(query: Query, data: dict[str, Any]) -> list[Series]:
    """The matrix of a range query as named series (NaN points dropped)."""
    found = []
    for item in data.get("result") or []:
        points = [(float(t), float(v)) for t, v in item.get("values") or []]
        points = [(t, v) for t, v in points if not math.isnan(v)]
        found.append(
            Series(
                legend(query.legend, item.get("metric") or {}) or query.expr,
                tuple(datetime.fromtimestamp(t, UTC) for t, _ in points),
                tuple(v for _, v in points),
                query.step_chart,
                query.events,
            )
        )
    return found


def range_query(
    base_url: str, expr: str, start: datetime, end: datetime, step: float
) -> dict[str, Any]:
    try:
        return promql.range_query(base_url, expr, start.timestamp(), end.timestamp(), step)
    except ValueError as error:
        raise OperationError(f"Prometheus rejected {expr!r}: {error}") from error


def fetch_panels(base_url: str, start: datetime, end: datetime) -> list[Panel]:
    config = api_get(base_url, "/api/v1/status/config", {}).get("yaml", "")
    step = step_for((end - start).total_seconds(), scrape_interval(str(config)))
    panels = []
    for spec in PANELS:
        series: list[Series] = []
        for query in spec.queries:
            series += series_of(query, range_query(base_url, query.expr, start, end, step))
        simulated = spec.simulated_when is not None and bool(
            series_of(
                Query(spec.simulated_when, ""),
                range_query(base_url, spec.simulated_when, start, end, step),
            )
        )
        panels.append(Panel(spec, tuple(series), simulated))
    return panels


def left_out(panels: list[Panel]) -> list[str]:
    """One line per panel with nothing to draw in the window: why it is not in the PNG."""
    return [
        f"{panel.spec.title}: {panel.spec.empty_because}" for panel in panels if not panel.series
    ]


def render_png(
    panels: list[Panel], path: Path, title: str, window: tuple[datetime, datetime]
) -> None:
    """Draw the panels with data one above the other into ``path`` (PNG, 1600 px wide),
    on a time axis that is exactly ``window``; the panels left out are named at the foot."""
    # Imported here: matplotlib is an optional extra and slow to load, and every other
    # verb must start without it.
    import matplotlib  # noqa: PLC0415

    matplotlib.use("Agg")  # no display: files only
    import matplotlib.dates as mdates  # noqa: PLC0415
    import matplotlib.pyplot as plt  # noqa: PLC0415
    from matplotlib.ticker import MaxNLocator  # noqa: PLC0415

    drawn = [panel for panel in panels if panel.series]
    figure, axes = plt.subplots(
        max(1, len(drawn)),
        1,
        figsize=(16, 3.6 * max(1, len(drawn)) + 0.6),
        sharex=True,
        squeeze=False,
    )
    for axis, panel in zip(axes[:, 0], drawn, strict=False):
        axis.set_title(
            panel.title,
            loc="left",
            fontsize=12,
            fontweight="bold",
            color="darkmagenta" if panel.simulated else "black",
        )
        axis.set_ylabel(panel.spec.unit)
        axis.grid(True, alpha=0.3)
        lines = [series for series in panel.series if not series.events]
        top = max((max(series.values, default=0) for series in lines), default=0)
        for index, series in enumerate(lines):
            # Equal values (1 target holding 1 GPU) must stay distinguishable.
            style = {"label": series.name, "linestyle": ("-", "--", ":")[index % 3]}
            if series.step_chart:
                axis.step(series.times, series.values, where="post", **style)
            else:
                axis.plot(series.times, series.values, **style)
        for marker, series in zip("v^os", (s for s in panel.series if s.events), strict=False):
            moments = series.increases()
            # Markers ride just above the lines, one row per kind of event.
            height = [top * 1.1 + 0.2 + 0.15 * "v^os".index(marker)] * len(moments)
            axis.scatter(moments, height, marker=marker, s=90, label=series.name, zorder=3)
        if panel.spec.y_max is not None:
            axis.set_ylim(0, panel.spec.y_max)
        else:
            # Headroom: a line at its maximum must not vanish into the frame.
            axis.set_ylim(0, top * 1.1 + 0.2 + 0.15 * 4)
        if panel.spec.whole_numbers:
            axis.yaxis.set_major_locator(MaxNLocator(integer=True))
        if panel.series:
            axis.legend(loc="upper left", fontsize=9, ncols=min(4, len(panel.series)))
    # The axis is the window the title names, even where it reaches back before the
    # cluster existed: a 2-minute report shows 2 minutes.
    axes[-1, 0].set_xlim(*window)
    omitted = left_out(panels)
    if omitted:
        figure.text(0.01, 0.005, "left out: " + "; ".join(omitted), fontsize=9, color="grey")
    axes[-1, 0].xaxis.set_major_formatter(mdates.DateFormatter("%H:%M:%S", tz=UTC))  # type: ignore[no-untyped-call]
    axes[-1, 0].set_xlabel("time (UTC)")
    figure.suptitle(title, fontsize=14)
    figure.tight_layout()
    figure.savefig(path, format="png", dpi=100)
    plt.close(figure)
