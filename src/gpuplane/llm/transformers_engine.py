"""The GPU engine: transformers on torch with its continuous batching
(ContinuousBatchingManager: a paged KV cache, a background thread that runs one step for
every active stream at once, streams joining and leaving between steps, results handed to
the event loop by ``register_result_handler`` - the path ``transformers serve`` takes).

Sampling is per request (temperature, top-p; temperature 0 is greedy, as top-k 1) through
the manager's per-request logits processors.

Weights: a directory prepared once by ``python -m gpuplane.llm.prepare`` (safetensors in
half precision, read in a fraction of a second) or, failing that, the GGUF file itself
(dequantised at every start by transformers' converter: tens of seconds; logged)."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, GenerationConfig
from transformers.generation import ContinuousBatchingConfig

from gpuplane.llm.engines import GGUF_NAME, Job

log = logging.getLogger("gpuplane.llm")
# Present in the generation config so the per-request versions of these warpers exist;
# every request then sets its own values.
SAMPLING_DEFAULTS = {"do_sample": True, "temperature": 0.7, "top_p": 0.9, "top_k": 1000}
KV_BLOCK_TOKENS = 256  # the manager's default block


def load_model(model_dir: Path, device: str, dtype_name: str) -> tuple[Any, Any]:
    dtype = getattr(torch, dtype_name)
    if (model_dir / "config.json").exists():
        source: dict[str, Any] = {}
    else:
        log.warning("no prepared weights in %s: dequantising the GGUF file", model_dir)
        source = {"gguf_file": GGUF_NAME}
    tokenizer = AutoTokenizer.from_pretrained(model_dir, **source)
    model = AutoModelForCausalLM.from_pretrained(
        model_dir, dtype=dtype, attn_implementation="sdpa", **source
    )
    return model.to(device).eval(), tokenizer


class TransformersEngine:
    def __init__(
        self, model_dir: Path, loop: asyncio.AbstractEventLoop, device: str, dtype: str, *,
        max_streams: int, context: int, cuda_graphs: bool,
    ) -> None:  # fmt: skip
        self.device = device
        self.device_name = (
            torch.cuda.get_device_name(0) if device == "cuda" else "CPU (torch)"
        ) + f", {dtype}"
        model, self._tokenizer = load_model(model_dir, device, dtype)
        self.context = min(context, int(model.config.max_position_embeddings))
        self._vocab = int(model.config.vocab_size)
        self._eos = sorted(self._end_tokens(model))
        generation = GenerationConfig(
            max_new_tokens=256, eos_token_id=self._eos, **SAMPLING_DEFAULTS
        )
        # The KV cache sized for the streams this server admits, each at full context, not
        # for most of the GPU's free memory (the manager's default): a 135M model shares
        # its GPU, and what it holds is what a scale-down gives back.
        blocks = max_streams * -(-self.context // KV_BLOCK_TOKENS) + 2
        graphs = cuda_graphs and device == "cuda"
        batching = ContinuousBatchingConfig(
            per_request_processors=True, max_requests_per_batch=max_streams,
            block_size=KV_BLOCK_TOKENS, num_blocks=blocks, use_cuda_graph=graphs,
        )  # fmt: skip
        self._manager = model.init_continuous_batching(
            generation_config=generation, continuous_batching_config=batching
        )
        self._loop = loop
        self._sent: dict[str, int] = {}
        self._manager.start()

    def _end_tokens(self, model: Any) -> set[int]:
        ends = model.generation_config.eos_token_id
        ids = set(ends if isinstance(ends, list) else [ends] if ends is not None else [])
        for name in ("<|im_end|>", "<|endoftext|>"):
            token = self._tokenizer.convert_tokens_to_ids(name)
            if isinstance(token, int) and token != self._tokenizer.unk_token_id:
                ids.add(token)
        return {int(i) for i in ids}

    def chat_ids(self, messages: tuple[tuple[str, str], ...]) -> list[int]:
        rendered = self._tokenizer.apply_chat_template(
            [{"role": r, "content": c} for r, c in messages],
            add_generation_prompt=True, tokenize=False,
        )  # fmt: skip
        return list(self._tokenizer.encode(rendered, add_special_tokens=False))

    def text_ids(self, prompt: str) -> list[int]:
        return list(self._tokenizer.encode(prompt, add_special_tokens=False))

    def decode(self, ids: list[int]) -> str:
        return str(self._tokenizer.decode(ids, skip_special_tokens=True))

    def submit(self, job: Job) -> None:
        sampling = job.sampling
        greedy = sampling.temperature == 0.0
        self._sent[job.id] = 0
        # The handler first: a fast first step must not find no one to hand its token to.
        self._manager.register_result_handler(job.id, lambda out: self._on_result(job, out))
        self._manager.add_request(
            input_ids=job.prompt_ids, request_id=job.id, max_new_tokens=sampling.max_tokens,
            streaming=True, temperature=1.0 if greedy else sampling.temperature,
            top_p=sampling.top_p, top_k=1 if greedy else self._vocab,
        )  # fmt: skip

    def _on_result(self, job: Job, output: Any) -> None:
        """On the event loop: the tokens not yet delivered (an output lists them all)."""
        generated = [t for t in output.generated_tokens if t not in self._eos]
        sent = self._sent.get(job.id, 0)
        finished = bool(output.is_finished())
        if finished:
            self._sent.pop(job.id, None)
        else:
            self._sent[job.id] = len(generated)
        if not job.cancelled:
            job.deliver(generated[sent:], finished, output.error)

    def cancel(self, job: Job) -> None:
        job.cancelled = True
        self._sent.pop(job.id, None)
        self._manager.cancel_request(job.id)

    def close(self) -> None:
        self._manager.stop(block=True, timeout=5.0)
