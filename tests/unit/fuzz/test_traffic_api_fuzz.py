"""The traffic simulator's HTTP API fuzzed: any path and body is answered 200, 400 or
404 (never a dropped connection or a 500), and a rejected body changes nothing."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import ThreadingHTTPServer

import httpx2
import pytest
from hypothesis import given
from hypothesis import strategies as st

from gpuplane.simulation.traffic import Simulator, handler_for
from tests.unit.fuzz.strategies import json_like

SIMULATOR = Simulator(None)
HTTP = httpx2.Client(trust_env=False, timeout=5)  # one client: making one costs 0.1 s


@pytest.fixture(scope="module")
def base_url() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler_for(SIMULATOR))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


paths = st.one_of(
    st.just("/traffic"),
    st.builds(
        lambda a, b: f"/traffic/{a}/{b}",
        st.from_regex(r"\A[a-z0-9-]{1,10}\Z"),
        st.from_regex(r"\A[a-z0-9-]{1,10}\Z"),
    ),
    st.from_regex(r"\A/[a-z/]{0,20}\Z"),
)
bodies = st.one_of(st.binary(max_size=200), json_like.map(lambda value: json.dumps(value).encode()))


@given(paths, bodies)
def test_any_put_is_answered(base_url: str, path: str, body: bytes) -> None:
    before = {key: flow.rps for key, flow in SIMULATOR.book.flows.items()}
    answer = HTTP.put(f"{base_url}{path}", content=body)
    assert answer.status_code in (200, 400, 404)
    if answer.status_code != 200:
        assert "error" in answer.json()
        after = {key: flow.rps for key, flow in SIMULATOR.book.flows.items()}
        assert after == before
