"""The Deployment cache against a scripted API server on loopback (aiohttp, as the
operator's own session talks to it): a LIST, then a watch stream whose events update it; a
410 in the stream lists again; one cache serves several namespaces; a watch event larger
than aiohttp's 64 KiB line limit is read whole."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from aiohttp import web

from gpuplane.downscaler.deployment_cache import DeploymentCache
from gpuplane.downscaler.snapshot import DeploymentSnapshot
from tests.unit.kube_sessions import session_for


def body(name: str, replicas: int, version: str, namespace: str = "ml") -> dict[str, Any]:
    return {
        "metadata": {
            "name": name,
            "namespace": namespace,
            "resourceVersion": version,
            "creationTimestamp": "2026-01-01T00:00:00Z",
        },
        "spec": {"replicas": replicas},
    }


class ScriptedServer:
    """Answers LISTs from ``lists`` and watches from ``watches``, in order."""

    def __init__(self, lists: list[list[dict[str, Any]]], watches: list[list[dict[str, Any]]]):
        self.lists, self.watches = lists, watches
        self.requests: list[str] = []

    async def handle(self, request: web.Request) -> web.StreamResponse:
        watching = request.query.get("watch") == "1"
        self.requests.append(f"{'WATCH' if watching else 'LIST'} {request.query_string}")
        if not watching:
            items = self.lists.pop(0)
            return web.json_response({"metadata": {"resourceVersion": "10"}, "items": items})
        if not self.watches:
            return web.Response(status=503)  # the test is over: the cache retries
        response = web.StreamResponse()
        await response.prepare(request)
        for event in self.watches.pop(0):
            # Written in small pieces: a line arrives split across reads.
            line = (json.dumps(event) + "\n").encode()
            for start in range(0, len(line), 7000):
                await response.write(line[start : start + 7000])
        await response.write_eof()
        return response


def follow(server: ScriptedServer, namespaces: list[str], until: Any) -> DeploymentCache:
    seen: list[tuple[str, str, bool]] = []

    async def go() -> DeploymentCache:
        app = web.Application()
        app.router.add_get("/{tail:.*}", server.handle)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        kube = session_for(f"http://127.0.0.1:{port}")

        def on_change(item: DeploymentSnapshot | None, namespace: str, name: str) -> None:
            seen.append((namespace, name, item is not None))

        cache = DeploymentCache(kube, namespaces, on_change)
        task = asyncio.create_task(cache.run())
        for _ in range(300):
            await asyncio.sleep(0.01)
            if until(cache):
                break
        task.cancel()
        await kube.close()
        await runner.cleanup()
        cache.seen = seen  # type: ignore[attr-defined]
        return cache

    return asyncio.run(go())


def test_list_then_watch_events_update_the_cache() -> None:
    server = ScriptedServer(
        [[body("a", 1, "5"), body("b", 2, "6")]],
        [
            [
                {"type": "MODIFIED", "object": body("a", 0, "11")},
                {"type": "BOOKMARK", "object": {"metadata": {"resourceVersion": "12"}}},
                {"type": "DELETED", "object": body("b", 2, "13")},
                {"type": "ADDED", "object": body("c", 3, "14")},
            ]
        ],
    )
    cache = follow(server, [], lambda c: {d.name for d in c.in_namespace("ml")} == {"a", "c"})
    assert cache.synced.is_set()
    items = {item.name: item for item in cache.in_namespace("ml")}
    assert items["a"].replicas == 0 and items["a"].resource_version == "11"
    assert set(items) == {"a", "c"}
    assert server.requests[0].startswith("LIST")
    assert (
        "resourceVersion=10" in server.requests[1]
        and "allowWatchBookmarks=true" in server.requests[1]
    )
    assert ("ml", "b", False) in cache.seen  # type: ignore[attr-defined]


def test_an_expired_watch_lists_again() -> None:
    server = ScriptedServer(
        [[body("old", 1, "5")], [body("new", 1, "20")]],
        [[{"type": "ERROR", "object": {"kind": "Status", "code": 410, "message": "too old"}}]],
    )
    cache = follow(server, [], lambda c: [d.name for d in c.in_namespace("ml")] == ["new"])
    assert [d.name for d in cache.in_namespace("ml")] == ["new"]
    assert [request.split(" ")[0] for request in server.requests[:3]] == ["LIST", "WATCH", "LIST"]


def test_synced_only_when_every_namespace_is_listed() -> None:
    server = ScriptedServer([[body("a", 1, "1", "x")], [body("b", 1, "2", "y")]], [])
    cache = DeploymentCache(session_for("http://127.0.0.1:9"), ["x", "y"])
    cache.replace("x", server.lists.pop(0))
    assert not cache.synced.is_set()
    cache.replace("y", server.lists.pop(0))
    assert cache.synced.is_set()
    assert [d.name for d in cache.in_namespace("y")] == ["b"]


def test_a_watch_event_over_64_kib_is_read_whole() -> None:
    big = body("big", 2, "11")
    big["metadata"]["annotations"] = {"note": "x" * 200_000}
    server = ScriptedServer([[body("a", 1, "5")]], [[{"type": "ADDED", "object": big}]])
    cache = follow(server, [], lambda c: "big" in {d.name for d in c.in_namespace("ml")})
    assert {d.name for d in cache.in_namespace("ml")} == {"a", "big"}
