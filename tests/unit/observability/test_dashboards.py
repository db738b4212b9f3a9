"""The dashboards as Grafana reads them: a unique uid each, unique panel ids, every panel
on the 24-column grid without overlap, every query on the ``$datasource`` variable with a
refId and a legend, and units set."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[3]
BOARDS = sorted((REPO / "observability" / "dashboards").glob("*.json"))


def load(path: Path) -> dict[str, Any]:
    board: dict[str, Any] = json.loads(path.read_text())
    return board


def test_uids_are_unique_and_named() -> None:
    uids = [load(path)["uid"] for path in BOARDS]
    assert len(BOARDS) == 3 and len(set(uids)) == len(uids)
    assert all(uid.startswith("gpuplane-") for uid in uids)


@pytest.mark.parametrize("path", BOARDS, ids=[path.name for path in BOARDS])
def test_panels_are_well_formed(path: Path) -> None:
    board = load(path)
    assert board["templating"]["list"][0]["type"] == "datasource"
    panels = board["panels"]
    assert len({panel["id"] for panel in panels}) == len(panels)
    cells: set[tuple[int, int]] = set()
    for panel in panels:
        grid = panel["gridPos"]
        assert grid["x"] >= 0 and grid["x"] + grid["w"] <= 24, panel["title"]
        area = {
            (x, y)
            for x in range(grid["x"], grid["x"] + grid["w"])
            for y in range(grid["y"], grid["y"] + grid["h"])
        }
        assert not cells & area, f"{panel['title']} overlaps another panel"
        cells |= area
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
        assert panel["fieldConfig"]["defaults"]["unit"]
        refs = [target["refId"] for target in panel["targets"]]
        assert refs and len(set(refs)) == len(refs)
        assert all(target["legendFormat"] for target in panel["targets"])
