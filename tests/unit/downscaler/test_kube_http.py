"""The operator's API client against a loopback HTTP server: the bearer token (and an
in-cluster token file) sent, JSON both ways, every request and its bytes counted; a
kubeconfig user it cannot serve is refused up front."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from gpuplane.downscaler.kube_http import KubeHttp
from gpuplane.downscaler.metrics import OperatorMetrics
from gpuplane.shared.kube_session import KubeSession, UnsupportedCredentials
from tests.unit.kube_sessions import context_for

SEEN: list[dict[str, Any]] = []


class Echo(BaseHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        return

    def do_PATCH(self) -> None:
        length = int(self.headers.get("Content-Length", "0"))
        SEEN.append(
            {
                "path": self.path,
                "auth": self.headers.get("Authorization"),
                "type": self.headers.get("Content-Type"),
                "body": json.loads(self.rfile.read(length)),
            }
        )
        data = json.dumps({"kind": "Deployment", "ok": True}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


@pytest.fixture
def server() -> Iterator[str]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Echo)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def test_token_json_and_counting(server: str, tmp_path: Path) -> None:
    SEEN.clear()
    token_file = tmp_path / "token"
    token_file.write_text("from-file\n")
    metrics = OperatorMetrics()

    async def two_calls() -> list[tuple[int, Any]]:
        results = []
        for user in ({"token": "abc"}, {"tokenFile": str(token_file)}):
            http = KubeHttp(KubeSession(context_for(server, user)), metrics)
            try:
                results.append(await http.call("PATCH", "/apis/x", {"a": 1}, merge=True))
            finally:
                await http.close()
        return results

    results = asyncio.run(two_calls())
    assert results == [(200, {"kind": "Deployment", "ok": True})] * 2
    assert [seen["auth"] for seen in SEEN] == ["Bearer abc", "Bearer from-file"]
    assert SEEN[0]["type"] == "application/merge-patch+json" and SEEN[0]["body"] == {"a": 1}
    assert metrics.kube_requests.labels("PATCH")._value.get() == 2
    assert metrics.kube_bytes.labels("sent")._value.get() == 2 * len(b'{"a":1}')
    assert metrics.kube_bytes.labels("received")._value.get() > 0


def test_users_it_cannot_serve_are_refused(server: str) -> None:
    exec_user = {"exec": {"apiVersion": "client.authentication.k8s.io/v1", "command": "x"}}
    for user in (exec_user, {"username": "a", "password": "b"}):
        with pytest.raises(UnsupportedCredentials, match="client certificate, a token"):
            KubeSession(context_for(server, user))
