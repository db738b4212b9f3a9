"""The transformers engine's configurations side by side, in process (no HTTP), on the
prepared weights: continuous batching as the service runs it, with a small KV cache, with
CUDA graphs; and plain ``generate`` (one sequence, the raw model's decode speed) as the
reference. Single-stream decode tokens/s and 32 streams' aggregate tokens/s. Prints JSON.
Run (GPU host): python3 bench/llm_engine_configs.py PREPARED_DIR [cuda|cpu]
"""

from __future__ import annotations

import importlib.util
import json
import sys
import time
from typing import Any

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, GenerationConfig
from transformers.generation import ContinuousBatchingConfig

PROMPT = "Count from 1 to 1000, separated by commas, and nothing else."
TOKENS = int(__import__("os").environ.get("TOKENS", "128"))


def single_stream(manager: Any, ids: list[int]) -> float:
    manager.add_request(input_ids=ids, request_id="one", max_new_tokens=TOKENS, streaming=True)
    times = []
    for out in manager.request_id_iter(request_id="one"):
        times.append(time.perf_counter())
        if out.is_finished():
            break
    return (len(times) - 1) / (times[-1] - times[0])


def many(manager: Any, ids: list[int], streams: int) -> float:
    start = time.perf_counter()
    for i in range(streams):
        manager.add_request(input_ids=ids, request_id=f"m{i}", max_new_tokens=TOKENS)
    done = 0
    tokens = 0
    while done < streams:
        out = manager.get_result(timeout=1)
        if out is not None and out.is_finished():
            done += 1
            tokens += len(out.generated_tokens)
    return tokens / (time.perf_counter() - start)


def main() -> None:
    directory = sys.argv[1]
    device = sys.argv[2] if len(sys.argv) > 2 else "cuda"
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    tok = AutoTokenizer.from_pretrained(directory)
    ids = tok.apply_chat_template([{"role": "user", "content": PROMPT}], add_generation_prompt=True,
                                  tokenize=False)  # fmt: skip
    ids = tok.encode(ids, add_special_tokens=False)
    report: dict[str, Any] = {
        "flash_attn": importlib.util.find_spec("flash_attn") is not None,
        "kernels": importlib.util.find_spec("kernels") is not None,
    }
    model = AutoModelForCausalLM.from_pretrained(
        directory, dtype=torch.bfloat16, attn_implementation="sdpa"
    )
    model = model.to(device).eval()
    x = torch.tensor([ids], device=device)
    with torch.inference_mode():
        for cache in ("dynamic", "static"):
            model.generate(x, max_new_tokens=8, do_sample=False, cache_implementation=cache)
            sync()
            start = time.perf_counter()
            out = model.generate(x, max_new_tokens=TOKENS, min_new_tokens=TOKENS, do_sample=False,
                                 cache_implementation=cache)  # fmt: skip
            sync()
            report[f"generate_{cache}_tokens_per_s"] = round(
                (out.shape[1] - x.shape[1]) / (time.perf_counter() - start), 1)  # fmt: skip
    configs = {
        "cb_default": {},
        "cb_small_cache": {"num_blocks": 64},
        "cb_cuda_graph": {"num_blocks": 64, "use_cuda_graph": True},
    }
    for name, extra in configs.items():
        try:
            generation = GenerationConfig(max_new_tokens=TOKENS, do_sample=False,
                                          eos_token_id=-1)  # fmt: skip
            cb = ContinuousBatchingConfig(**extra)
            manager = model.init_continuous_batching(generation_config=generation,
                                                     continuous_batching_config=cb)  # fmt: skip
            manager.start()
            single_stream(manager, ids)  # warm
            result = {"single_stream_tokens_per_s": round(single_stream(manager, ids), 1)}
            result["streams_32_tokens_per_s"] = round(many(manager, ids, 32), 1)
            manager.stop(block=True, timeout=10)
        except Exception as error:  # noqa: BLE001 - one failing configuration is a result
            result = {"error": f"{type(error).__name__}: {error}"[:300]}
        report[name] = result
        print(name, result, file=sys.stderr, flush=True)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
