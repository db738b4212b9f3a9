"""How gpuplane's services learn to stop: SIGTERM (the kubelet, ``gpuplane down``) or SIGINT
(Ctrl-C) sets an event on the running loop, so shutdown runs as ordinary code (close
listeners, release NVML) rather than as an exception out of whatever was awaited. A leaf
module: the service images carry it beside their own package."""

from __future__ import annotations

import asyncio
import signal


def stop_event() -> asyncio.Event:
    """An event that SIGTERM or SIGINT sets; call it inside the running loop."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    return stop
