"""A model service as a real local process on 127.0.0.1: the embeddings service (the CPU
path: numpy) by default, or the chat model's (``module=LLM``: llama.cpp)."""

from __future__ import annotations

import contextlib
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx2

from gpuplane.backends.local.processes import terminate
from gpuplane.backends.local.services import free_port
from gpuplane.metrics_text import sample_sum

MODEL = "all-MiniLM-L6-v2"
INFERENCE = "gpuplane.inference.main"
LLM = "gpuplane.llm.main"


@dataclass
class Service:
    url: str
    process: subprocess.Popen[bytes]
    log: Path

    def metric(self, name: str, **labels: str) -> float:
        """Sum of the samples of ``name`` whose labels include ``labels``."""
        text = httpx2.get(f"{self.url}/metrics", timeout=5, trust_env=False).text
        return sample_sum(text, name, **labels)


@contextlib.contextmanager
def running_service(
    log: Path, *flags: str, ready: bool = True, module: str = INFERENCE
) -> Iterator[Service]:
    port = free_port()
    command = [sys.executable, "-m", module, "--port", str(port), *flags]
    with log.open("wb") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
    service = Service(f"http://127.0.0.1:{port}", process, log)
    try:
        wait_http(service, "/healthz" if not ready else "/readyz")
        yield service
    finally:
        terminate([process.pid], grace=10)
        process.wait()


def wait_http(service: Service, path: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if service.process.poll() is not None:
            raise AssertionError(f"the service exited: {service.log.read_text()[-2000:]}")
        with contextlib.suppress(httpx2.TransportError):
            if httpx2.get(service.url + path, timeout=2, trust_env=False).status_code == 200:
                return
        time.sleep(0.05)
    raise AssertionError(f"{path} never answered 200: {service.log.read_text()[-2000:]}")
