"""The HTTP side: ``POST /v1/embeddings``, ``GET /v1/models``, ``/healthz`` (the process
answers), ``/readyz`` (weights on the device and a warm-up batch done), ``/metrics``.

The listener opens before the model loads, so a kubelet's liveness probe passes during a
long load while readiness keeps traffic away until the model is warm."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiohttp import web

from gpuplane.inference.api import (
    MODEL_ALIASES,
    EmbeddingsRequest,
    parse_request,
    response_body,
)
from gpuplane.inference.batching import Batcher, QueueFull
from gpuplane.inference.metrics import ServiceMetrics
from gpuplane.shared.openai_errors import ApiError, parse_json_body
from gpuplane.shared.service_http import add_service_routes, counting_middleware

log = logging.getLogger("gpuplane.inference")
MAX_BODY_BYTES = 16 * 1024 * 1024
# Request bodies being read or parsed at once, all requests together: 24 concurrent 16 MB
# bodies once took the pod to 729 MiB of its 1 Gi. Past it: 503 + Retry-After.
MAX_BODY_BYTES_IN_FLIGHT = 64 * 1024 * 1024
API_PATHS = ("/v1/embeddings", "/v1/models")
# Refusals counted in the rejected metric by their code.
REJECTIONS = frozenset({"not_ready", "body_budget"})
INLINE_ENCODE_MAX = 8  # vectors in a response encoded on the event loop itself


@dataclass
class ServiceState:
    metrics: ServiceMetrics
    batcher: Batcher | None = None
    dimensions: int = 0
    ready: bool = False
    tasks: list[asyncio.Task[Any]] = field(default_factory=list)
    body_budget: int = MAX_BODY_BYTES_IN_FLIGHT
    body_bytes: int = 0  # reserved by the requests being read now


STATE = web.AppKey("state", ServiceState)


def _error(error: ApiError, headers: dict[str, str] | None = None) -> web.Response:
    return web.json_response(error.body(), status=error.status, headers=headers)


def _unavailable(message: str, code: str) -> web.Response:
    body = ApiError(503, message, code=code, kind="server_error")
    return _error(body, {"Retry-After": "1"})


count_api = counting_middleware(API_PATHS, lambda request: request.app[STATE].metrics)


async def embeddings(request: web.Request) -> web.Response:
    state = request.app[STATE]
    try:
        parsed, batcher = await _read_request(request, state)
        vectors, tokens = await batcher.submit(parsed.texts)
    except ApiError as error:
        if error.code in REJECTIONS:
            state.metrics.reject(error.code or "")
        return _error(error, {"Retry-After": "1"} if error.status == 503 else None)
    except QueueFull as error:
        state.metrics.reject("queue_full")
        return _unavailable(f"the server is at capacity ({error}); retry shortly", "queue_full")
    state.metrics.tokens.inc(tokens)
    body = response_body(parsed, vectors, tokens)
    # 128 vectors of 384 floats take milliseconds even with orjson: off the event loop,
    # which meanwhile reads the next requests. One vector is cheaper inline than a hop.
    if len(vectors) > INLINE_ENCODE_MAX:
        encoded = await asyncio.get_running_loop().run_in_executor(None, encode_json, body)
    else:
        encoded = encode_json(body)
    return web.Response(body=encoded, content_type="application/json")


def encode_json(body: dict[str, Any]) -> bytes:
    """orjson, numpy arrays written whole (float32, shortest form that reads back exactly)."""
    return orjson.dumps(body, option=orjson.OPT_SERIALIZE_NUMPY)


async def _read_request(
    request: web.Request, state: ServiceState
) -> tuple[EmbeddingsRequest, Batcher]:
    """The request and the batcher to submit it to, or the ApiError that answers it: not
    ready, over the body budget, not JSON (or nested past the parser's depth), invalid, or
    more inputs than ever fit."""
    batcher = state.batcher
    if not state.ready or batcher is None:
        raise ApiError(503, "the model is still loading; retry shortly", code="not_ready",
                       kind="server_error")  # fmt: skip
    # A body of unknown length (chunked) may be as large as the per-request limit.
    reserved = min(request.content_length or MAX_BODY_BYTES, MAX_BODY_BYTES)
    if state.body_bytes + reserved > state.body_budget:
        message = (
            f"{state.body_bytes} bytes of request bodies are in flight; the budget is "
            f"{state.body_budget}: retry shortly"
        )
        raise ApiError(503, message, code="body_budget", kind="server_error")
    state.body_bytes += reserved
    try:
        body = parse_json_body(await request.read())
    finally:
        state.body_bytes -= reserved
    parsed = parse_request(body, state.dimensions)
    if len(parsed.texts) > batcher.max_queue:
        # Never fits, however long the client waits: not a 503 to retry.
        raise ApiError(
            413,
            f"'input' has {len(parsed.texts)} items; this server queues at most "
            f"{batcher.max_queue}: split the request",
            "input",
        )
    return parsed, batcher


async def too_large(request: web.Request) -> web.Response:
    raise web.HTTPRequestEntityTooLarge(
        max_size=MAX_BODY_BYTES, actual_size=request.content_length or 0
    )


def make_app(state: ServiceState) -> web.Application:
    app = web.Application(middlewares=[count_api], client_max_size=MAX_BODY_BYTES)
    app[STATE] = state
    app.router.add_post("/v1/embeddings", embeddings)

    def before_scrape() -> None:
        if state.batcher is not None:
            state.metrics.queued.set(state.batcher.queued)

    add_service_routes(app, model=MODEL_ALIASES[0], is_ready=lambda: state.ready,
                       registry=state.metrics.registry, before_scrape=before_scrape)  # fmt: skip
    return app
