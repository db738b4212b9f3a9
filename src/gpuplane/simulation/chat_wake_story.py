"""The demo's third act, where a real node can run it: the chat model (``apps/llm``) behind
the activator. It answers a streamed chat, goes idle, is scaled to zero by the downscaler on
the activator's counter, and a streamed chat that arrives at zero is held, wakes it and
streams token by token. The story prints the time to the first token after the wake, split
into the wake's steps as seen from outside and the service's own start-up phases.

By default it plays only where the gpu node is real (the platform's showcase: an LLM on the
GPU, woken on demand). On the app node it is asked for (``sim demo --chat``): the CPU image
needs llama.cpp's Python package, a source build that the quick start does not pay for.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx2
from lightkube import Client
from lightkube.resources.core_v1 import Pod

from gpuplane.errors import OperationError
from gpuplane.kube.apply import apply_files, delete_files
from gpuplane.simulation.chat_stream import Streamed, stream_chat
from gpuplane.simulation.demo_story import wait
from gpuplane.simulation.wake_story import (
    ActivatorControl,
    Variant,
    activator_routes,
    choose_variant,
    held_total,
    pod_labels,
    ready_replicas,
    replicas,
    wait_scaled_to_zero,
)
from gpuplane.simulation.wake_timeline import STEPS, WakeTimeline, service_phases
from gpuplane.topology import Platform

NAMESPACE = "ml"
SERVICE = "llm"
ROUTE = "/ml/llm/"
MODEL = "SmolLM2-135M-Instruct"
PROMPT = "Count from 1 to 100, separated by commas."
MAX_TOKENS = 64
# The held chat may wait for a whole cold start (weights dequantised on a GPU: tens of s).
REQUEST_TIMEOUT = 300.0


def choose_chat_variant(
    platform: Platform, llm: Path, *, on_app_node: bool
) -> tuple[Variant | None, str]:
    """Which manifest of ``apps/llm`` the act runs on which real node, or ``None`` and why
    the act is not played."""
    variant = choose_variant(platform, llm)
    if variant is None:
        return None, "every node is KWOK here (it needs a kubelet node)"
    if variant.manifest == "server-cpu.yaml" and not on_app_node:
        return None, (
            "the gpu node is KWOK here; on the app node it plays with --chat "
            "(its image needs llama-cpp-python: make llm)"
        )
    return variant, ""


# The real GPU's framebuffer in use, from gpu-exporter (NVML) through Prometheus; None where
# no real GPU is scraped. Simulated series never count.
GpuMemoryReader = Callable[[], float | None]
GPU_MEMORY_QUERY = 'max(DCGM_FI_DEV_FB_USED{simulated!="true"})'
# Prometheus sees the freed memory at its next scrape of gpu-exporter.
GPU_MEMORY_SETTLE_SECONDS = 30.0


@dataclass(frozen=True)
class GpuMemory:
    serving_mib: float  # with the chat model's pod on the GPU, after a chat
    after_scale_down_mib: float  # once its pod is gone


@dataclass(frozen=True)
class ChatWakeOutcome:
    first_token_seconds: float  # from the chat's arrival at zero
    tokens: int  # events that carried text
    stream_seconds: float  # from the first token to the last
    steps: dict[str, float]  # the wake's steps (STEPS), seconds from the chat's arrival
    service_start: str  # the woken service's own start-up phases, as it logged them
    held: int  # chats the activator held (its hold-time histogram)
    replicas: int  # after the wake: the ledger's count
    gpu_memory: GpuMemory | None  # on a real GPU only


def routes(variant: Variant) -> list[dict[str, Any]]:
    return activator_routes(variant, name="llm", service=SERVICE, route=ROUTE)


def _chat() -> dict[str, Any]:
    messages = [{"role": "user", "content": PROMPT}]
    return {"model": MODEL, "messages": messages, "temperature": 0, "max_tokens": MAX_TOKENS}


def _streamed_whole(answer: Streamed) -> bool:
    return answer.status == 200 and answer.done and bool(answer.content_arrivals())


def _describe(answer: Streamed) -> str:
    """A streamed answer in a line: its first token and its rate."""
    arrivals = answer.content_arrivals()
    span = arrivals[-1] - arrivals[0]
    rate = f", {(len(arrivals) - 1) / span:.0f} tokens/s" if span > 0 else ""
    return f"{len(arrivals)} tokens, the first after {arrivals[0] * 1000:.0f} ms{rate}"


def _phases(steps: dict[str, float]) -> str:
    return ", ".join(f"{step} {steps[step]:.2f}s" for step in STEPS if step in steps)


def _freed(read: GpuMemoryReader, serving: float) -> float:
    """The GPU memory in use once the scrape after the pod's exit shows it lower (or the
    last reading after the settle time)."""
    deadline = time.monotonic() + GPU_MEMORY_SETTLE_SECONDS
    while True:
        now = read()
        if now is None or now < serving or time.monotonic() > deadline:
            return serving if now is None else now
        time.sleep(1.0)


def run_chat_wake_story(
    client: Client,
    apps: Path,
    variant: Variant,
    activator: ActivatorControl,
    note: Callable[[str], None],
    *,
    gpu_memory: GpuMemoryReader | None = None,
) -> ChatWakeOutcome:
    demo, llm = apps / "demo", apps / "llm"
    apply_files(client, [llm / "namespace.yaml", llm / variant.manifest, llm / "service.yaml"])
    note(
        f"{variant.deployment}: the chat model (apps/llm) starts on {variant.node}, a kubelet node"
    )
    wait("the chat model to be ready", lambda: ready_replicas(client, variant.deployment) >= 1, 600)
    address = activator.start(routes(variant), {"maxHeld": 16, "maxHoldSeconds": REQUEST_TIMEOUT})
    url = f"{address.url}{ROUTE.rstrip('/')}"
    try:
        apply_files(client, [demo / "chat-wake-policy.yaml"])
        warm = stream_chat(url, _chat(), timeout=REQUEST_TIMEOUT)
        if not _streamed_whole(warm):
            raise OperationError(f"demo: the chat model answered {warm.status} {warm.body!r}")
        note(f"a streamed chat through the activator: {_describe(warm)}; then none")
        serving = gpu_memory() if gpu_memory else None
        wait_scaled_to_zero(client, variant.deployment, note)
        labels = pod_labels(client, variant.deployment)
        memory = None
        if gpu_memory is not None and serving is not None:
            memory = GpuMemory(serving, _freed(gpu_memory, serving))
            note(
                f"GPU memory (gpu-exporter, NVML): {memory.serving_mib:,.0f} MiB in use while "
                f"serving, {memory.after_scale_down_mib:,.0f} MiB after the scale to zero"
            )
        note("a streamed chat arrives at zero: the activator holds it, asks a wake")
        with httpx2.Client(trust_env=False, timeout=10) as http:
            metrics = f"{address.metrics_url}/metrics"
            held_before = held_total(http.get(metrics).text, variant.deployment)
            timeline = WakeTimeline(client, NAMESPACE, variant.deployment, labels)
            timeline.start()
            answer = stream_chat(url, _chat(), timeout=REQUEST_TIMEOUT)
            steps = timeline.stop()
            held = int(held_total(http.get(metrics).text, variant.deployment) - held_before)
        if not _streamed_whole(answer):
            raise OperationError(
                f"demo: the chat held at zero was lost ({answer.status} {answer.body!r})"
            )
        arrivals = answer.content_arrivals()
        woken = [
            pod.metadata.name
            for pod in client.list(Pod, namespace=NAMESPACE, labels=labels)
            if pod.metadata is not None and pod.metadata.name
        ]
        log = "\n".join(client.log(woken[0], namespace=NAMESPACE)) if woken else ""
        outcome = ChatWakeOutcome(
            first_token_seconds=arrivals[0],
            tokens=len(arrivals),
            stream_seconds=arrivals[-1] - arrivals[0],
            steps=steps,
            service_start=service_phases(log),
            held=held,
            replicas=replicas(client, variant.deployment),
            gpu_memory=memory,
        )
        note(
            f"wake: held {outcome.held}, lost 0; first token {outcome.first_token_seconds:.2f}s "
            f"after the chat arrived, {outcome.tokens} tokens streamed over "
            f"{outcome.stream_seconds:.2f}s; {variant.deployment} back at "
            f"{outcome.replicas} replica(s)"
        )
        note(f"  the wake's steps, seconds from the chat: {_phases(outcome.steps)}")
        note(f"  the service's start: {outcome.service_start}")
        return outcome
    finally:
        activator.stop()
        delete_files(client, [demo / "chat-wake-policy.yaml", llm / variant.manifest])
