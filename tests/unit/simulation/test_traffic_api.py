"""The traffic simulator's HTTP API on a loopback port: one rate or many at once, the
rates file written once per request, bad bodies answered 400 with what is wrong."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import ThreadingHTTPServer
from pathlib import Path

import httpx2
import pytest

from gpuplane.simulation.traffic import Simulator, handler_for


@pytest.fixture
def api(tmp_path: Path) -> Iterator[tuple[str, Simulator]]:
    simulator = Simulator(tmp_path / "rates.json")
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler_for(simulator))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", simulator
    finally:
        server.shutdown()
        server.server_close()


def test_one_rate_and_many_at_once(api: tuple[str, Simulator], tmp_path: Path) -> None:
    url, simulator = api
    with httpx2.Client(trust_env=False, timeout=5) as http:
        assert http.put(f"{url}/traffic/ml/llm", content='{"rps": 2}').status_code == 200
        rows = [{"namespace": "b", "deployment": f"d-{i}", "rps": 1.5} for i in range(500)]
        answer = http.put(f"{url}/traffic", content=json.dumps(rows))
        assert answer.status_code == 200 and answer.json() == {"updated": 500}
        table = http.get(f"{url}/traffic").json()
    assert len(table) == 501
    assert {row["rps"] for row in table if row["namespace"] == "b"} == {1.5}
    saved = json.loads((tmp_path / "rates.json").read_text())
    assert len(saved) == 501
    # a restart keeps them
    assert len(Simulator(tmp_path / "rates.json").book.flows) == 501
    assert simulator.book.flows[("ml", "llm")].rps == 2


@pytest.mark.parametrize(
    ("path", "body", "expected"),
    [
        ("/traffic/ml/llm", '{"rps": -1}', "must not be negative"),
        ("/traffic/ml/llm", '{"rate": 1}', "bad request"),
        ("/traffic/ml/llm", "not json", "bad request"),
        ("/traffic", '[{"namespace": "a", "deployment": "b", "rps": -2}]', "must not be negative"),
        ("/traffic", '[{"namespace": "a"}]', "bad request"),
        ("/traffic", '{"rps": 1}', "bad request"),
    ],
)
def test_bad_bodies_are_400_and_change_nothing(
    api: tuple[str, Simulator], path: str, body: str, expected: str
) -> None:
    url, simulator = api
    with httpx2.Client(trust_env=False, timeout=5) as http:
        answer = http.put(f"{url}{path}", content=body)
    assert answer.status_code == 400
    assert expected in answer.json()["error"]
    assert simulator.book.flows == {}
