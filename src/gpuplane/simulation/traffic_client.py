"""Talk to a running traffic simulator (what ``gpuplane sim traffic`` uses)."""

from __future__ import annotations

import json
from typing import Any

import httpx2

from gpuplane.errors import BadInputError, OperationError


class TrafficClient:
    """The traffic simulator at ``url`` (the local backend says where it runs)."""

    def __init__(self, url: str) -> None:
        self.url = url

    def _call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        try:
            with httpx2.Client(timeout=5.0, trust_env=False) as http:
                response = http.request(
                    method, self.url + path, content=json.dumps(body) if body else None
                )
        except httpx2.HTTPError as error:
            raise OperationError(
                f"traffic simulator at {self.url} did not answer: {error}"
            ) from error
        if response.status_code != 200:
            raise OperationError(f"traffic simulator: {response.text}")
        return response.json()

    def set_rate(self, namespace: str, deployment: str, rps: float) -> None:
        self._call("PUT", f"/traffic/{namespace}/{deployment}", {"rps": rps})

    def rates(self) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = self._call("GET", "/traffic")
        return rows


def parse_target(text: str) -> tuple[str, str]:
    namespace, slash, deployment = text.partition("/")
    if not slash or not namespace or not deployment:
        raise BadInputError(f"{text!r}: expected NAMESPACE/DEPLOYMENT")
    return namespace, deployment
