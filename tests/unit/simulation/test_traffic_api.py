"""The traffic simulator's HTTP API on a loopback port: one rate or many at once, the
rates file written once per request, bad bodies answered 400 with what is wrong; rates
that are not finite refused and never persisted; label values escaped in /metrics; a
Content-Length that is negative, malformed or too large answered before any read."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from http.server import ThreadingHTTPServer
from pathlib import Path

import httpx2
import pytest
from prometheus_client.parser import text_string_to_metric_families

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


@pytest.mark.parametrize("value", ["NaN", "Infinity", "-Infinity", "1e400"])
def test_a_rate_that_is_not_finite_is_400_and_never_persisted(
    api: tuple[str, Simulator], tmp_path: Path, value: str
) -> None:
    url, simulator = api
    with httpx2.Client(trust_env=False, timeout=5) as http:
        one = http.put(f"{url}/traffic/ml/llm", content=f'{{"rps": {value}}}')
        many = http.put(
            f"{url}/traffic", content=f'[{{"namespace": "a", "deployment": "b", "rps": {value}}}]'
        )
    for answer in (one, many):
        assert answer.status_code == 400 and "finite" in answer.json()["error"]
    assert simulator.book.flows == {}
    assert not (tmp_path / "rates.json").exists()


def test_label_values_are_escaped_in_the_exposition(api: tuple[str, Simulator]) -> None:
    url, simulator = api
    with httpx2.Client(trust_env=False, timeout=5) as http:
        assert http.put(f"{url}/traffic/ml/a%22b", content='{"rps": 1}').status_code == 200
        simulator.set_rate('x"y\\z', "new\nline", 2.0)
        text = http.get(f"{url}/metrics").text
    families = {f.name: f for f in text_string_to_metric_families(text)}
    names = {
        (s.labels["namespace"], s.labels["deployment"])
        for s in families["gateway_requests"].samples
    }
    assert names == {("ml", "a%22b"), ('x"y\\z', "new\nline")}


def raw_exchange(url: str, request: bytes) -> bytes:
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=5) as connection:
        connection.sendall(request)
        return connection.recv(4096)


@pytest.mark.parametrize(
    ("length", "status"), [("-5", b" 400 "), ("abc", b" 400 "), ("99999999999", b" 413 ")]
)
def test_content_length_is_validated_before_reading(
    api: tuple[str, Simulator], length: str, status: bytes
) -> None:
    url, simulator = api
    head = f"PUT /traffic/ml/llm HTTP/1.1\r\nHost: x\r\nContent-Length: {length}\r\n\r\n"
    answer = raw_exchange(url, head.encode())  # answered at once, no body awaited
    assert status in answer.split(b"\r\n", 1)[0], answer
    assert simulator.book.flows == {}
