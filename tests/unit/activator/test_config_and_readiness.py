from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
import yaml

from gpuplane.activator.config import ConfigError, EndpointsUpstream, FixedUpstream, parse_routes
from gpuplane.activator.endpoints import Readiness, ready_endpoints
from gpuplane.activator.waker import wake_patch
from gpuplane.shared.wake_annotation import WAKE_REQUEST_ANNOTATION, parse_wake_request

GOOD: dict[str, Any] = {
    "limits": {"maxHeld": 10, "maxHoldSeconds": 60},
    "backends": [
        {"name": "emb", "namespace": "ml", "deployment": "inference", "service": "inference",
         "upstream": "http://inference.ml.svc:8000/", "match": {"pathPrefix": "/ml/inference/"},
         "stripPrefix": True},
        {"name": "chat", "namespace": "ml", "deployment": "chat", "service": "chat",
         "upstream": "http://chat.ml.svc", "match": {"host": "chat.example"}, "maxHeld": 3},
    ],
}  # fmt: skip


def test_routes_by_prefix_then_host_with_per_backend_limits() -> None:
    routes = parse_routes(GOOD)
    emb = routes.route("anything:8080", "/ml/inference/v1/embeddings")
    assert emb is not None and emb.name == "emb"
    assert emb.upstream == FixedUpstream("inference.ml.svc", 8000, tls=False)
    assert emb.upstream_path("/ml/inference/v1/embeddings") == "/v1/embeddings"
    assert (emb.max_held, emb.max_hold_seconds) == (10, 60.0)
    chat = routes.route("chat.example:443", "/v1/chat")
    assert chat is not None and chat.max_held == 3
    assert chat.upstream == FixedUpstream("chat.ml.svc", 80, tls=False)
    assert routes.route("other.example", "/v1/chat") is None


@pytest.mark.parametrize(
    ("change", "fragment"),
    [
        (
            {"upstream": "inference:8000"},
            "backends[0]: upstream 'inference:8000' is neither an http(s) URL",
        ),
        (
            {"upstream": "http://inference:99999"},
            "upstream 'http://inference:99999' is neither an http(s) URL",
        ),
        ({"upstream": "endpoints:x"}, "endpoints:PORT needs a port"),
        ({"match": {}}, "backends[0]: 'match' needs a host or a pathPrefix"),
        ({"match": {"pathPrefix": "ml/"}}, "pathPrefix 'ml/' must start with '/'"),
        ({"service": ""}, "backends[0]: 'service' must be a non-empty string"),
        ({"maxHeld": 0}, "'maxHeld' must be a positive number"),
        ({"name": "chat"}, "name 'chat' is used twice"),
    ],
)
def test_bad_routes_name_the_entry(change: dict[str, Any], fragment: str) -> None:
    document = {**GOOD, "backends": [{**GOOD["backends"][0], **change}, GOOD["backends"][1]]}
    with pytest.raises(ConfigError) as caught:
        parse_routes(document, "routes.yaml")
    assert fragment in str(caught.value)
    assert str(caught.value).startswith("routes.yaml: ")


def slice_of(name: str, *ready: bool | None) -> dict[str, Any]:
    endpoints = [
        {"addresses": [f"10.0.{len(name)}.{i}"], "conditions": {} if r is None else {"ready": r}}
        for i, r in enumerate(ready)
    ]
    return {"metadata": {"name": name}, "endpoints": endpoints}


def test_readiness_counts_ready_endpoints_across_slices() -> None:
    assert ready_endpoints(slice_of("a", True, False, None)) == 2  # no condition: ready

    async def follow() -> list[int]:
        seen: list[int] = []
        readiness = Readiness(seen.append)
        readiness.replace([slice_of("a", False)])
        assert not readiness.ready.is_set()
        readiness.apply("MODIFIED", slice_of("a", True))
        assert readiness.ready.is_set()
        readiness.apply("ADDED", slice_of("b", True, True))
        readiness.apply("DELETED", slice_of("a"))
        readiness.apply("MODIFIED", slice_of("b", False, False))
        assert not readiness.ready.is_set()
        return seen

    assert asyncio.run(follow()) == [0, 1, 3, 2, 0]


def test_endpoint_upstreams_take_ready_addresses_in_turn() -> None:
    document = {**GOOD, "backends": [{**GOOD["backends"][0], "upstream": "endpoints:8000"}]}
    (backend,) = parse_routes(document).backends
    assert backend.upstream == EndpointsUpstream(8000)

    async def turns() -> list[str | None]:
        readiness = Readiness()
        empty = readiness.next_address()
        readiness.replace([slice_of("a", True, False, True)])
        return [empty, *(readiness.next_address() for _ in range(4))]

    assert asyncio.run(turns()) == [None, "10.0.1.2", "10.0.1.0", "10.0.1.2", "10.0.1.0"]


def test_the_wake_patch_is_what_the_downscaler_reads_back() -> None:
    from datetime import UTC, datetime  # noqa: PLC0415

    moment = datetime(2026, 11, 28, 10, 0, 5, tzinfo=UTC)
    patch = wake_patch(moment)
    assert patch == {"metadata": {"annotations": {WAKE_REQUEST_ANNOTATION: "2026-11-28T10:00:05Z"}}}
    assert parse_wake_request(patch["metadata"]["annotations"]) == moment  # type: ignore[index]


def test_the_shipped_routes_name_a_deployment_and_service_of_apps() -> None:
    """deploy/activator's ConfigMap parses, and each backend's Deployment and Service exist
    in the repository's manifests (a wake request for a Deployment that is not there
    would never wake anything)."""
    repo = Path(__file__).resolve().parents[3]
    documents = [
        document
        for path in sorted((repo / "deploy" / "activator").glob("*.yaml"))
        for document in yaml.safe_load_all(path.read_text())
        if document
    ]
    (config_map,) = [d for d in documents if d["kind"] == "ConfigMap"]
    routes = parse_routes(yaml.safe_load(config_map["data"]["routes.yaml"]))
    shipped = {
        (document["kind"], document["metadata"].get("namespace"), document["metadata"]["name"])
        for path in sorted((repo / "apps").rglob("*.yaml"))
        for document in yaml.safe_load_all(path.read_text())
        if document
    }
    for backend in routes.backends:
        assert ("Deployment", backend.namespace, backend.deployment) in shipped, backend
        assert ("Service", backend.namespace, backend.service) in shipped, backend
