"""The HTTP side: ``POST /v1/embeddings``, ``GET /v1/models``, ``/healthz`` (the process
answers), ``/readyz`` (weights on the device and a warm-up batch done), ``/metrics``.

The listener opens before the model loads, so a kubelet's liveness probe passes during a
long load while readiness keeps traffic away until the model is warm."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from gpuplane.inference.api import MODEL_ALIASES, ApiError, parse_request, response_body
from gpuplane.inference.batching import Batcher, QueueFull
from gpuplane.inference.metrics import ServiceMetrics

log = logging.getLogger("gpuplane.inference")
MAX_BODY_BYTES = 16 * 1024 * 1024
API_PATHS = ("/v1/embeddings", "/v1/models")


@dataclass
class ServiceState:
    metrics: ServiceMetrics
    batcher: Batcher | None = None
    dimensions: int = 0
    ready: bool = False
    tasks: list[asyncio.Task[Any]] = field(default_factory=list)


def _error(error: ApiError, headers: dict[str, str] | None = None) -> web.Response:
    return web.json_response(error.body(), status=error.status, headers=headers)


def _unavailable(message: str, code: str) -> web.Response:
    body = ApiError(503, message, code=code, kind="server_error")
    return _error(body, {"Retry-After": "1"})


@web.middleware
async def count_api(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    """Count and time API requests; known paths only, so the label stays bounded."""
    started = time.monotonic()
    state: ServiceState = request.app["state"]
    path = request.path if request.path in API_PATHS else ""
    status = 500  # unless the handler answers: an exception is aiohttp's 500
    try:
        response = await handler(request)
        status = response.status
    except web.HTTPException as error:
        status = error.status
        raise
    finally:
        if path:
            state.metrics.request(request.method, path, status, time.monotonic() - started)
    return response


async def embeddings(request: web.Request) -> web.Response:
    state: ServiceState = request.app["state"]
    if not state.ready or state.batcher is None:
        state.metrics.reject("not_ready")
        return _unavailable("the model is still loading; retry shortly", "not_ready")
    try:
        body = json.loads(await request.read())
    except ValueError as error:
        return _error(ApiError(400, f"the body is not JSON: {error}"))
    try:
        parsed = parse_request(body, state.dimensions)
    except ApiError as error:
        return _error(error)
    try:
        vectors, tokens = await state.batcher.submit(parsed.texts)
    except QueueFull as error:
        state.metrics.reject("queue_full")
        return _unavailable(f"the server is at capacity ({error}); retry shortly", "queue_full")
    state.metrics.tokens.inc(tokens)
    return web.json_response(response_body(parsed, vectors, tokens))


async def models(request: web.Request) -> web.Response:
    data = [{"id": MODEL_ALIASES[0], "object": "model", "owned_by": "gpuplane"}]
    return web.json_response({"object": "list", "data": data})


async def healthz(request: web.Request) -> web.Response:
    # A failed start ends the process (exit 3), so a process that answers is healthy.
    return web.json_response({"ok": True})


async def readyz(request: web.Request) -> web.Response:
    state: ServiceState = request.app["state"]
    return web.json_response({"ready": state.ready}, status=200 if state.ready else 503)


async def metrics(request: web.Request) -> web.Response:
    state: ServiceState = request.app["state"]
    if state.batcher is not None:
        state.metrics.queued.set(state.batcher.queued)
    body = generate_latest(state.metrics.registry)
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})


async def too_large(request: web.Request) -> web.Response:
    raise web.HTTPRequestEntityTooLarge(
        max_size=MAX_BODY_BYTES, actual_size=request.content_length or 0
    )


def make_app(state: ServiceState) -> web.Application:
    app = web.Application(middlewares=[count_api], client_max_size=MAX_BODY_BYTES)
    app["state"] = state
    app.router.add_post("/v1/embeddings", embeddings)
    app.router.add_get("/v1/models", models)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics)
    return app
