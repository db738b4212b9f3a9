"""The exporter's process: ``/metrics`` reads NVML and asks the kubelet who holds each GPU
at every scrape (both are cheap: no cache to go stale), ``/healthz`` answers while NVML
does. Exit codes: 0 on a signal, 2 bad flags, 3 NVML unavailable (no driver or GPU)."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from dataclasses import dataclass, field
from pathlib import Path

from aiohttp import web

from gpuplane.gpu_exporter.exposition import exposition
from gpuplane.gpu_exporter.flags import add_arguments
from gpuplane.gpu_exporter.nvml_readings import Nvml, NvmlUnavailable
from gpuplane.gpu_exporter.podresources import (
    GPU_RESOURCE,
    PodResourcesError,
    holders_by_gpu,
    list_pod_resources,
)
from gpuplane.shared.stop_signals import stop_event

log = logging.getLogger("gpuplane.gpu_exporter")
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


@dataclass
class Exporter:
    nvml: Nvml
    socket: Path
    hostname: str
    resource: str = GPU_RESOURCE
    pod_resources_errors: int = 0
    last_error: str = field(default="")

    def render(self) -> str:
        readings = self.nvml.read()
        up = 1
        try:
            holders = holders_by_gpu(list_pod_resources(self.socket), self.resource)
        except PodResourcesError as error:
            # The GPUs' series still go out, unattributed; the gauge says why pods are missing.
            holders, up = {}, 0
            self.pod_resources_errors += 1
            if str(error) != self.last_error:
                log.warning("%s", error)
            self.last_error = str(error)
        own = [
            "# HELP gpuplane_gpu_exporter_pod_resources_up 1 if pod-resources answered.",
            "# TYPE gpuplane_gpu_exporter_pod_resources_up gauge",
            f"gpuplane_gpu_exporter_pod_resources_up {up}",
            "# HELP gpuplane_gpu_exporter_pod_resources_errors_total Failed pod-resources calls.",
            "# TYPE gpuplane_gpu_exporter_pod_resources_errors_total counter",
            f"gpuplane_gpu_exporter_pod_resources_errors_total {self.pod_resources_errors}",
        ]
        return (
            exposition(readings, holders, self.hostname, self.nvml.driver) + "\n".join(own) + "\n"
        )


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="gpuplane gpu-exporter", description=__doc__)
    add_arguments(parser)
    return parser.parse_args(argv)


async def serve(args: argparse.Namespace) -> int:
    try:
        nvml = Nvml()
    except NvmlUnavailable as error:
        print(f"gpu-exporter: {error}", file=sys.stderr)
        return 3
    exporter = Exporter(nvml, args.pod_resources_socket, args.hostname, args.resource)

    async def metrics(request: web.Request) -> web.Response:
        text = await asyncio.to_thread(exporter.render)
        return web.Response(body=text.encode(), headers={"Content-Type": CONTENT_TYPE})

    async def healthz(request: web.Request) -> web.Response:
        return web.json_response({"ok": True, "gpus": len(await asyncio.to_thread(nvml.read))})

    app = web.Application()
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/healthz", healthz)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, args.host, args.port).start()
    log.info("serving %s:%d for %s (driver %s)", args.host, args.port, args.hostname, nvml.driver)
    stop = stop_event()
    try:
        await stop.wait()
    finally:
        await runner.cleanup()
        nvml.close()
    return 0


def run(args: argparse.Namespace) -> int:
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    return asyncio.run(serve(args))


def main(argv: list[str] | None = None) -> None:
    sys.exit(run(parse_args(argv)))


if __name__ == "__main__":
    main()
