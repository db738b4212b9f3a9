"""The HTTP side: ``POST /v1/chat/completions`` and ``/v1/completions`` (``stream: true``
as server-sent events, one event per token as it is produced, then ``data: [DONE]``),
``GET /v1/models``, ``/healthz``, ``/readyz``, ``/metrics``.

Capacity is explicit: at most ``max_streams`` requests generate at once and
``max_waiting`` wait for a slot; beyond that 503 + Retry-After. A client that goes away
(the handler is cancelled: the runner is started with handler cancellation) has its
generation cancelled and its slot freed at once."""

from __future__ import annotations

import asyncio
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiohttp import web

from gpuplane.llm.api import (
    MODEL_ALIASES,
    GenerationRequest,
    Usage,
    chunk_body,
    parse_request,
    response_body,
    usage_chunk,
)
from gpuplane.llm.engines import Engine, Job
from gpuplane.llm.metrics import LlmMetrics
from gpuplane.llm.text import TextStream
from gpuplane.shared.openai_errors import ApiError, parse_json_body
from gpuplane.shared.service_http import add_service_routes, counting_middleware

MAX_BODY_BYTES = 256 * 1024  # a prompt is at most 32,000 characters (api.MAX_PROMPT_CHARS)
API_PATHS = ("/v1/chat/completions", "/v1/completions", "/v1/models")
SSE_HEADERS = {
    "Content-Type": "text/event-stream",
    "Cache-Control": "no-cache",
    # Proxies that buffer (nginx) pass this stream through as it comes.
    "X-Accel-Buffering": "no",
}
Delivery = tuple[list[int], bool, str | None]


@dataclass
class LlmState:
    metrics: LlmMetrics
    max_streams: int
    max_waiting: int
    max_tokens: int
    engine: Engine | None = None
    ready: bool = False
    active: int = 0
    waiting: int = 0
    slots: asyncio.Condition = field(default_factory=asyncio.Condition)


STATE = web.AppKey("state", LlmState)


class Capacity(Exception):
    """Every slot busy and the waiting line full."""


def _error(error: ApiError) -> web.Response:
    headers = {"Retry-After": "1"} if error.status == 503 else None
    return web.json_response(error.body(), status=error.status, headers=headers)


count_api = counting_middleware(API_PATHS, lambda request: request.app[STATE].metrics)


async def _slot(state: LlmState) -> None:
    async with state.slots:
        if state.active >= state.max_streams and state.waiting >= state.max_waiting:
            raise Capacity
        state.waiting += 1
        state.metrics.waiting.set(state.waiting)
        try:
            await state.slots.wait_for(lambda: state.active < state.max_streams)
        finally:
            state.waiting -= 1
            state.metrics.waiting.set(state.waiting)
        state.active += 1
        state.metrics.active.set(state.active)


async def _release(state: LlmState) -> None:
    async with state.slots:
        state.active -= 1
        state.metrics.active.set(state.active)
        state.slots.notify(1)


async def chat_completions(request: web.Request) -> web.StreamResponse:
    return await _generate(request, chat=True)


async def completions(request: web.Request) -> web.StreamResponse:
    return await _generate(request, chat=False)


async def _generate(request: web.Request, *, chat: bool) -> web.StreamResponse:
    arrived = time.monotonic()
    state = request.app[STATE]
    engine = state.engine
    if not state.ready or engine is None:
        state.metrics.reject("not_ready")
        return _error(ApiError(503, "the model is still loading; retry shortly",
                               code="not_ready", kind="server_error"))  # fmt: skip
    try:
        body = parse_json_body(await _body(request))
        parsed = parse_request(body, chat=chat, max_tokens_limit=state.max_tokens)
        prompt_ids = _prompt_ids(engine, parsed)
        await _slot(state)
    except ApiError as error:
        return _error(error)
    except Capacity:
        state.metrics.reject("queue_full")
        message = (f"{state.active} streams are generating and {state.waiting} waiting, the "
                   "most this server takes; retry shortly")  # fmt: skip
        return _error(ApiError(503, message, code="queue_full", kind="server_error"))
    try:
        generation = Generation(request, state, engine, parsed, prompt_ids=prompt_ids,
                                arrived=arrived)  # fmt: skip
        return await generation.run()
    finally:
        await _release(state)


async def _body(request: web.Request) -> bytes:
    try:
        return await request.read()
    except web.HTTPRequestEntityTooLarge:
        raise ApiError(
            413, f"the body is over {MAX_BODY_BYTES} bytes", code="body_too_large"
        ) from None


def _prompt_ids(engine: Engine, parsed: GenerationRequest) -> list[int]:
    ids = engine.chat_ids(parsed.messages) if parsed.chat else engine.text_ids(parsed.prompt)
    if len(ids) + parsed.sampling.max_tokens > engine.context:
        raise ApiError(
            400,
            f"the prompt is {len(ids)} tokens and max_tokens {parsed.sampling.max_tokens}; "
            f"this model's context is {engine.context} tokens",
            "messages" if parsed.chat else "prompt", "context_length_exceeded",
        )  # fmt: skip
    return ids


class Generation:
    """One request's generation: submitted to the engine, its tokens turned into text and
    sent (as events, or whole at the end), cancelled if the client leaves."""

    def __init__(
        self, request: web.Request, state: LlmState, engine: Engine, parsed: GenerationRequest,
        *, prompt_ids: list[int], arrived: float,
    ) -> None:  # fmt: skip
        self.request, self.state, self.engine, self.parsed = request, state, engine, parsed
        self.prompt_ids, self.arrived = prompt_ids, arrived
        self.deliveries: asyncio.Queue[Delivery] = asyncio.Queue()
        self.text = TextStream(engine.decode, parsed.sampling.stop)
        self.id = ("chatcmpl-" if parsed.chat else "cmpl-") + uuid.uuid4().hex[:24]
        self.created = int(time.time())
        self.job = Job(self.id, prompt_ids, parsed.sampling, self._deliver)
        self.last_token: float | None = None
        self.done = False

    def _deliver(self, ids: list[int], done: bool, error: str | None) -> None:
        self.deliveries.put_nowait((ids, done, error))

    async def run(self) -> web.StreamResponse:
        metrics = self.state.metrics
        metrics.prompt_tokens.inc(len(self.prompt_ids))
        self.engine.submit(self.job)
        try:
            if self.parsed.stream:
                return await self._stream()
            return await self._whole()
        finally:
            if not self.done:
                # Cancelled (the client left), stopped by a stop sequence, or failed.
                self.engine.cancel(self.job)
                if not self.text.stopped:
                    metrics.disconnects.inc()

    async def _pieces(self) -> Any:
        """Text pieces as tokens arrive; ends at the engine's end or a stop sequence."""
        while True:
            ids, done, error = await self.deliveries.get()
            if error is not None:
                self.done = True
                raise RuntimeError(error)
            if ids:
                self._observe(len(ids))
                piece = self.text.push(ids)
                if piece:
                    yield piece
                if self.text.stopped:
                    return
            if done:
                self.done = True
                if tail := self.text.finish():
                    yield tail
                return

    def _observe(self, count: int) -> None:
        now = time.monotonic()
        metrics = self.state.metrics
        if self.last_token is None:
            metrics.ttft.observe(now - self.arrived)
        else:
            metrics.gap.observe(now - self.last_token)
        self.last_token = now
        metrics.completion_tokens.inc(count)

    def _finish_reason(self) -> str:
        if self.text.stopped:
            return "stop"
        return "length" if self.text.tokens >= self.parsed.sampling.max_tokens else "stop"

    def _usage(self) -> Usage:
        return Usage(len(self.prompt_ids), self.text.tokens)

    async def _whole(self) -> web.Response:
        try:
            text = "".join([piece async for piece in self._pieces()])
        except RuntimeError as error:
            return _error(ApiError(500, f"generation failed: {error}", kind="server_error"))
        body = response_body(self.parsed, self.id, self.created, text,
                             finish=self._finish_reason(), usage=self._usage())  # fmt: skip
        return web.Response(body=orjson.dumps(body), content_type="application/json")

    async def _stream(self) -> web.StreamResponse:
        response = web.StreamResponse(headers=SSE_HEADERS)
        await response.prepare(self.request)
        first = True
        try:
            async for piece in self._pieces():
                await self._event(response, chunk_body(
                    self.parsed, self.id, self.created, piece, None, first=first))  # fmt: skip
                first = False
        except RuntimeError as error:
            failure = ApiError(500, f"generation failed: {error}", kind="server_error")
            await self._event(response, failure.body())
        else:
            finish = self._finish_reason()
            await self._event(response, chunk_body(
                self.parsed, self.id, self.created, None, finish, first=first))  # fmt: skip
            if self.parsed.include_usage:
                await self._event(response, usage_chunk(
                    self.parsed, self.id, self.created, self._usage()))  # fmt: skip
        await response.write(b"data: [DONE]\n\n")
        await response.write_eof()
        return response

    @staticmethod
    async def _event(response: web.StreamResponse, body: dict[str, Any]) -> None:
        await response.write(b"data: " + orjson.dumps(body) + b"\n\n")


def make_app(state: LlmState) -> web.Application:
    app = web.Application(middlewares=[count_api], client_max_size=MAX_BODY_BYTES)
    app[STATE] = state
    app.router.add_post("/v1/chat/completions", chat_completions)
    app.router.add_post("/v1/completions", completions)
    add_service_routes(app, model=MODEL_ALIASES[0], is_ready=lambda: state.ready,
                       registry=state.metrics.registry)  # fmt: skip
    return app
