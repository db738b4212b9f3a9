"""What every model service has besides its API: ``/v1/models`` (its one model),
``/healthz`` (the process answers: a failed start ends it), ``/readyz`` (the model is on
its device and warm), ``/metrics``, the middleware that counts API requests, the number
flags of their command lines, and how their processes run."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
import time
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, NoReturn

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from gpuplane.shared.service_metrics import ServiceSeries
from gpuplane.shared.stop_signals import stop_event

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def bounded(kind: type[int] | type[float], low: float, high: float) -> Any:
    """An argparse type: a number of ``kind`` within ``low..high``, or a clear refusal."""

    def parse(text: str) -> Any:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"{value} is outside {low}..{high}")
        return value

    return parse


def add_service_routes(
    app: web.Application,
    *,
    model: str,
    is_ready: Callable[[], bool],
    registry: CollectorRegistry,
    before_scrape: Callable[[], None] | None = None,
) -> None:
    async def models(request: web.Request) -> web.Response:
        data = [{"id": model, "object": "model", "owned_by": "gpuplane"}]
        return web.json_response({"object": "list", "data": data})

    async def healthz(request: web.Request) -> web.Response:
        return web.json_response({"ok": True})

    async def readyz(request: web.Request) -> web.Response:
        ready = is_ready()
        return web.json_response({"ready": ready}, status=200 if ready else 503)

    async def metrics(request: web.Request) -> web.Response:
        if before_scrape is not None:
            before_scrape()
        body = generate_latest(registry)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    app.router.add_get("/v1/models", models)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics)


def counting_middleware(
    paths: tuple[str, ...], series_of: Callable[[web.Request], ServiceSeries]
) -> Any:
    """Count and time API requests (known paths only: a bounded label), in flight while
    answered; a stream counts until its last byte."""

    @web.middleware
    async def count_api(request: web.Request, handler: Handler) -> web.StreamResponse:
        started = time.monotonic()
        series = series_of(request)
        path = request.path if request.path in paths else ""
        status = 499  # the client went away (the handler was cancelled) unless it answered
        if path:
            series.in_flight.inc()
        try:
            response = await handler(request)
            status = response.status
        except web.HTTPException as error:
            status = error.status
            raise
        except asyncio.CancelledError:
            raise
        except Exception:
            status = 500  # aiohttp's answer to an exception
            raise
        finally:
            if path:
                series.in_flight.dec()
                series.request(request.method, path, status, time.monotonic() - started)
        return response

    return count_api


def run_service(serve: Callable[[], Coroutine[Any, Any, int]]) -> NoReturn:
    """Log to stderr with times, run the service's event loop, exit with its code."""
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    sys.exit(asyncio.run(serve()))


async def run_until_stopped(
    loading: asyncio.Task[None], missing: tuple[type[BaseException], ...], log: logging.Logger
) -> int:
    """Serve until a stop signal; a start-up that fails ends it at once. The exit code: 0
    stopped, 3 the start failed for want of something (``missing``: a model, a device),
    1 it failed otherwise."""
    stop = stop_event()
    try:
        done, _ = await asyncio.wait(
            {loading, asyncio.create_task(stop.wait())}, return_when=asyncio.FIRST_COMPLETED
        )
        if loading in done and (error := loading.exception()) is not None:
            log.error("cannot start: %s", error)
            return 3 if isinstance(error, missing) else 1
        await stop.wait()
        return 0
    finally:
        loading.cancel()
