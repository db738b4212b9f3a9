"""A stand-in backend for the activator's tests (run as its own process): /echo answers
the request's method, path and body; /sse sends five events 0.3 s apart."""

from __future__ import annotations

import argparse
import asyncio

from aiohttp import web


async def echo(request: web.Request) -> web.Response:
    body = await request.text()
    return web.json_response({"method": request.method, "path": request.path, "body": body})


async def sse(request: web.Request) -> web.StreamResponse:
    response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
    await response.prepare(request)
    for index in range(5):
        await response.write(f"data: event {index}\n\n".encode())
        await asyncio.sleep(0.3)
    await response.write_eof()
    return response


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    app = web.Application()
    app.router.add_route("*", "/echo", echo)
    app.router.add_get("/sse", sse)
    web.run_app(app, host="127.0.0.1", port=args.port, print=None)


if __name__ == "__main__":
    main()
