"""Every PromQL expression of the dashboards and rules, named by where it lives.

Grafana variables are replaced by what makes the query concrete: ``$node``-style
variables match everything (they sit in ``=~`` matchers), ``$__rate_interval`` becomes
a window several scrapes wide. A variable's ``label_values(METRIC, label)`` is checked
as the query ``METRIC``.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from gpuplane.errors import BadInputError

RATE_WINDOW = "1m"
LABEL_VALUES = re.compile(r"\s*label_values\(\s*(?P<metric>.+?)\s*,\s*\w+\s*\)\s*")
VARIABLE = re.compile(r"\$\{?(\w+)\}?")


@dataclass(frozen=True)
class NamedQuery:
    source: str  # file name
    where: str  # panel "title" ref A, variable "node", rule "alert X"
    expr: str  # concrete PromQL

    @property
    def label(self) -> str:
        return f"{self.source}: {self.where}"


def concrete(expr: str) -> str:
    """``expr`` with Grafana's variables replaced (see the module doc)."""

    def replace(match: re.Match[str]) -> str:
        name = match.group(1)
        if name in ("__rate_interval", "__interval", "__range"):
            return RATE_WINDOW
        return ".*"

    return VARIABLE.sub(replace, expr)


def _panels(panels: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Panels, rows' nested panels included."""
    found = []
    for panel in panels:
        found.append(panel)
        found.extend(_panels(panel.get("panels") or []))
    return found


def dashboard_queries(path: Path) -> list[NamedQuery]:
    try:
        board = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise BadInputError(f"{path}:{error.lineno}: not JSON: {error.msg}") from error
    queries = []
    for variable in (board.get("templating") or {}).get("list") or []:
        if variable.get("type") != "query":
            continue
        raw = variable.get("query")
        text = raw.get("query", "") if isinstance(raw, dict) else str(raw or "")
        match = LABEL_VALUES.fullmatch(text)
        expr = match.group("metric") if match else text
        queries.append(NamedQuery(path.name, f'variable "{variable["name"]}"', concrete(expr)))
    for panel in _panels(board.get("panels") or []):
        for target in panel.get("targets") or []:
            if target.get("expr"):
                where = f'panel "{panel.get("title", panel.get("id"))}" query {target["refId"]}'
                queries.append(NamedQuery(path.name, where, concrete(target["expr"])))
    return queries


def rule_queries(path: Path) -> list[NamedQuery]:
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as error:
        raise BadInputError(f"{path}: not YAML: {error}") from error
    queries = []
    for group in document.get("groups") or []:
        for rule in group.get("rules") or []:
            kind = "alert" if "alert" in rule else "record"
            queries.append(
                NamedQuery(path.name, f"{kind} {rule.get(kind)}", str(rule.get("expr", "")))
            )
    return queries


def all_queries(observability: Path) -> list[NamedQuery]:
    """Dashboards then rules, in file order."""
    queries = []
    for path in sorted((observability / "dashboards").glob("*.json")):
        queries.extend(dashboard_queries(path))
    for path in sorted((observability / "rules").glob("*.yaml")):
        queries.extend(rule_queries(path))
    return queries
