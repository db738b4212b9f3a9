"""PromQL checks with the real Prometheus: parsing by promtool, answers by a server.

Parsing goes through ``promtool check rules``: each query becomes a recording rule in
its own group, so promtool's error names the group and the group names the query.
"""

from __future__ import annotations

import json
import math
import re
import shutil
import subprocess
import tempfile
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from gpuplane.errors import OperationError, PrerequisiteError
from gpuplane.observability.queries import NamedQuery

PROMTOOL_TIMEOUT_SECONDS = 60.0
HTTP_TIMEOUT_SECONDS = 10.0
GROUP_ERROR = re.compile(r'group "q(?P<index>\d+)", rule \d+, "[^"]*": (?P<message>.*)$')


@dataclass(frozen=True)
class QueryCheck:
    query: NamedQuery
    ok: bool
    detail: str  # the parse error, the server's error, or what the answer held


def promtool() -> str:
    found = shutil.which("promtool")
    if found is None:
        raise PrerequisiteError(
            "promtool is not installed: it parses every PromQL expression "
            "(scripts/install-system-packages.sh installs Debian's prometheus)"
        )
    return found


def parse_checks(queries: list[NamedQuery]) -> list[QueryCheck]:
    """One result per query: parsed by Prometheus' own parser, or its error."""
    groups = [
        {"name": f"q{index}", "rules": [{"record": "gpuplane_check", "expr": query.expr}]}
        for index, query in enumerate(queries)
    ]
    with tempfile.NamedTemporaryFile("w", suffix=".rules.yaml", delete=False) as handle:
        yaml.safe_dump({"groups": groups}, handle, sort_keys=False)
        rules = Path(handle.name)
    try:
        result = subprocess.run(
            [promtool(), "check", "rules", str(rules)],
            capture_output=True,
            text=True,
            timeout=PROMTOOL_TIMEOUT_SECONDS,
            check=False,
        )
    finally:
        rules.unlink(missing_ok=True)
    errors: dict[int, str] = {}
    for line in (result.stdout + result.stderr).splitlines():
        match = GROUP_ERROR.search(line)
        if match:
            errors[int(match.group("index"))] = match.group("message")
    if result.returncode != 0 and not errors:
        raise OperationError(f"promtool check rules failed: {result.stderr.strip()}")
    return [
        QueryCheck(query, index not in errors, errors.get(index, "parses"))
        for index, query in enumerate(queries)
    ]


def api_get(base_url: str, path: str, params: dict[str, str]) -> dict[str, Any]:
    """The ``data`` of a Prometheus API answer.

    ValueError carries the server's own message for a query it rejects; OperationError
    names an unreachable server. No proxy: these are loopback or port-forward addresses.
    """
    url = f"{base_url.rstrip('/')}{path}?" + urllib.parse.urlencode(params)
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(url, timeout=HTTP_TIMEOUT_SECONDS) as response:
            payload = json.loads(response.read())
    except urllib.error.HTTPError as error:
        body = error.read()
        message = json.loads(body).get("error") if body.startswith(b"{") else None
        raise ValueError(message or f"HTTP {error.code}") from error
    except (urllib.error.URLError, OSError) as error:
        raise OperationError(f"Prometheus at {base_url} is unreachable: {error}") from error
    data: dict[str, Any] = payload.get("data") or {}
    return data


def instant_query(base_url: str, expr: str) -> dict[str, Any]:
    return api_get(base_url, "/api/v1/query", {"query": expr})


def range_query(base_url: str, expr: str, start: float, end: float, step: float) -> dict[str, Any]:
    """``expr`` evaluated every ``step`` seconds from ``start`` to ``end`` (Unix times)."""
    params = {"query": expr, "start": f"{start:.3f}", "end": f"{end:.3f}", "step": f"{step:g}"}
    return api_get(base_url, "/api/v1/query_range", params)


def scalar_or_zero(base_url: str, expr: str) -> float:
    """The one value of an aggregate like ``sum(x)``; 0 while the series does not exist."""
    result = instant_query(base_url, expr).get("result") or []
    return float(result[0]["value"][1]) if result else 0.0


def finite_samples(data: dict[str, Any]) -> int:
    """How many samples of an instant answer are numbers (NaN and Inf are not data)."""
    kind, result = data.get("resultType"), data.get("result")
    if kind == "scalar":
        values = [result[1]] if result else []
    else:
        values = [series["value"][1] for series in result or []]
    return sum(math.isfinite(float(value)) for value in values)


def finite_series(data: dict[str, Any]) -> int:
    """How many series of a range answer hold at least one number."""
    return sum(
        any(math.isfinite(float(value)) for _, value in series.get("values") or [])
        for series in data.get("result") or []
    )


@dataclass(frozen=True)
class Window:
    """The time range a dashboard shows: data anywhere in it counts, as on the screen."""

    end: float  # Unix time
    seconds: float
    points: int = 120

    def query(self, base_url: str, expr: str) -> int:
        """Series of ``expr`` with a number somewhere in the window."""
        step = max(self.seconds / self.points, 1.0)
        return finite_series(range_query(base_url, expr, self.end - self.seconds, self.end, step))


def data_checks(
    queries: list[NamedQuery],
    base_url: str,
    window: Window,
    optional: dict[str, str] | None = None,
) -> list[QueryCheck]:
    """One result per query: ok when it draws at least one number in ``window``.

    A window, not an instant: a rate over the last minute is empty a minute after the
    event it counts (a wake), yet a dashboard of the last 15 minutes still shows it.
    ``optional`` maps a dashboard of a workload that may not run on this platform (the
    inference service) to the series that says it runs: without that series, its queries
    are reported as skipped, not failed."""
    absent = {
        source
        for source, presence in (optional or {}).items()
        if window.query(base_url, presence) == 0
    }
    checks = []
    for query in queries:
        if query.source in absent:
            presence = (optional or {})[query.source]
            checks.append(QueryCheck(query, True, f"skipped: no {presence} (not running here)"))
            continue
        try:
            found = window.query(base_url, query.expr)
        except ValueError as error:
            checks.append(QueryCheck(query, False, f"server error: {error}"))
            continue
        checks.append(QueryCheck(query, found > 0, f"{found} series with data"))
    return checks
