"""The llama.cpp engine: llama.cpp through llama-cpp-python, reading the GGUF file as it
ships (Q4_1 weights, llama.cpp's own quantised kernels, the chat template from the file's
metadata, rendered by llama-cpp-python's formatter). The CPU's engine, and the GPU's where
the wheel was built with CUDA (every layer offloaded).

Streams are batched as llama.cpp's own server does: each has its own sequence in one KV
cache, and every step decodes one token of each generating stream together with prompt
chunks of new ones (``step_plan``), so streams join and leave between steps (continuous
batching). ``slots`` bounds how many share the cache; more wait in arrival order (how
many a device gets: ``batch_slots`` in engines.py)."""

from __future__ import annotations

import asyncio
import heapq
import os
import queue
import threading
from collections import deque
from pathlib import Path
from typing import Any

import llama_cpp
from llama_cpp import llama_vocab_is_eog
from llama_cpp._internals import LlamaBatch, LlamaContext, LlamaModel
from llama_cpp._logger import set_verbose
from llama_cpp.llama_chat_format import Jinja2ChatFormatter

from gpuplane.llm.engines import GGUF_NAME, Job
from gpuplane.llm.step_plan import Feed, Stream, advance, plan_step

PREFILL_BATCH = 512  # tokens a step may carry (llama.cpp's default batch)
_backend = threading.Lock()
_backend_started: list[bool] = []


def _start_backend() -> None:
    """llama.cpp's one-time initialisation (the Llama class does it on first use); its
    log keeps to errors, as the Llama class's ``verbose=False`` does."""
    with _backend:
        if not _backend_started:
            set_verbose(False)
            llama_cpp.llama_backend_init()
            _backend_started.append(True)


class _Active:
    """A job with its sequence and its own sampler chain (its temperature and top-p)."""

    def __init__(self, job: Job, seq_id: int) -> None:
        self.job = job
        self.stream = Stream(seq_id, job.prompt_ids)
        chain = llama_cpp.llama_sampler_chain_init(llama_cpp.llama_sampler_chain_default_params())
        sampling = job.sampling
        if sampling.temperature == 0.0:
            llama_cpp.llama_sampler_chain_add(chain, llama_cpp.llama_sampler_init_greedy())
        else:
            llama_cpp.llama_sampler_chain_add(
                chain, llama_cpp.llama_sampler_init_top_p(sampling.top_p, 1)
            )
            llama_cpp.llama_sampler_chain_add(
                chain, llama_cpp.llama_sampler_init_temp(sampling.temperature)
            )
            seed = int.from_bytes(os.urandom(4), "little")
            llama_cpp.llama_sampler_chain_add(chain, llama_cpp.llama_sampler_init_dist(seed))
        self.sampler = chain

    def close(self) -> None:
        llama_cpp.llama_sampler_free(self.sampler)


class LlamaCppEngine:
    def __init__(
        self, model_dir: Path, loop: asyncio.AbstractEventLoop, context: int, *,
        gpu: bool = False, slots: int = 1, unified_kv: bool = True,
    ) -> None:  # fmt: skip
        _start_backend()
        threads = len(os.sched_getaffinity(0))
        model_params = llama_cpp.llama_model_default_params()
        model_params.n_gpu_layers = -1 if gpu else 0  # on a GPU every layer goes there
        self._model = LlamaModel(
            path_model=str(model_dir / GGUF_NAME), params=model_params, verbose=False
        )
        params = llama_cpp.llama_context_default_params()
        # One sequence per slot, room for each slot's whole context, in one buffer
        # (unified) or one per sequence (``unified_kv`` in engines.py picks). With one per
        # sequence llama.cpp splits a step into one sub-batch per run of consecutive,
        # increasing sequence ids (split_equal, "sequential"): slots handed out highest
        # first had eight streams decoded one by one on the H100 (288 tokens/s against 1,453
        # lowest first; docs/llm.md), so the lowest free slot goes first.
        params.n_ctx = context * slots
        params.n_seq_max = slots
        params.kv_unified = unified_kv
        params.n_batch = params.n_ubatch = PREFILL_BATCH
        params.n_threads = params.n_threads_batch = threads
        self._ctx = LlamaContext(model=self._model, params=params, verbose=False)
        self._batch = LlamaBatch(n_tokens=PREFILL_BATCH, embd=0, n_seq_max=1, verbose=False)
        self.context = context
        self.slots = slots
        self.device = "cuda" if gpu else "cpu"
        self.device_name = "llama.cpp CUDA" if gpu else f"llama.cpp CPU, {threads} threads"
        model = self._model
        metadata = model.metadata()
        self._format = Jinja2ChatFormatter(
            metadata["tokenizer.chat_template"],
            eos_token=model.detokenize([model.token_eos()], special=True).decode(),
            bos_token=model.detokenize([model.token_bos()], special=True).decode(),
        )
        self._loop = loop
        self._jobs: queue.SimpleQueue[Job | None] = queue.SimpleQueue()
        self._worker = threading.Thread(target=self._run, name="llama-cpp", daemon=True)
        self._worker.start()

    def chat_ids(self, messages: tuple[tuple[str, str], ...]) -> list[int]:
        listed: Any = [{"role": role, "content": text} for role, text in messages]
        rendered = self._format(messages=listed)
        # The template writes the special tokens as text: they are read back as specials.
        return list(self._model.tokenize(rendered.prompt.encode(), add_bos=False, special=True))

    def text_ids(self, prompt: str) -> list[int]:
        return list(self._model.tokenize(prompt.encode(), add_bos=False, special=False))

    def decode(self, ids: list[int]) -> str:
        return self._model.detokenize(ids).decode("utf-8", errors="replace")

    def submit(self, job: Job) -> None:
        self._jobs.put(job)

    def cancel(self, job: Job) -> None:
        job.cancelled = True  # the worker drops it before its next step

    def close(self) -> None:
        self._jobs.put(None)

    def _run(self) -> None:
        waiting: deque[Job] = deque()
        active: list[_Active] = []
        free = list(range(self.slots))  # a heap: the lowest free slot first
        while self._collect(waiting, block=not active and not waiting):
            while waiting and free:
                job = waiting.popleft()
                if not job.prompt_ids:  # nothing to continue from: it would never step
                    self._send(job, [], True, "the prompt has no tokens")
                elif not job.cancelled:
                    active.append(_Active(job, heapq.heappop(free)))
            for gone in [a for a in active if a.job.cancelled]:
                self._release(gone, active, free)
            if not active:
                continue
            try:
                self._step(active, free)
            except Exception as error:  # noqa: BLE001 - a failed step fails its streams, not the worker
                for each in list(active):
                    self._send(each.job, [], True, f"{type(error).__name__}: {error}")
                    self._release(each, active, free)

    def _collect(self, waiting: deque[Job], *, block: bool) -> bool:
        """New jobs into ``waiting`` (idle: sleeping until one comes); False once closed."""
        if block:
            job = self._jobs.get()
            if job is None:
                return False
            waiting.append(job)
        while True:
            try:
                job = self._jobs.get_nowait()
            except queue.Empty:
                return True
            if job is None:
                return False
            waiting.append(job)

    def _step(self, active: list[_Active], free: list[int]) -> None:
        by_sequence = {a.stream.seq_id: a for a in active}
        feeds = plan_step([a.stream for a in active], PREFILL_BATCH)
        batch = self._batch.batch
        index = 0
        sampled_at: list[tuple[Feed, int]] = []
        for feed in feeds:
            for offset, token in enumerate(feed.tokens):
                batch.token[index] = token
                batch.pos[index] = feed.first_position + offset
                batch.n_seq_id[index] = 1
                batch.seq_id[index][0] = feed.stream.seq_id
                last = offset == len(feed.tokens) - 1
                batch.logits[index] = feed.wants_logits and last
                index += 1
            if feed.wants_logits:
                sampled_at.append((feed, index - 1))
        batch.n_tokens = index
        self._ctx.decode(self._batch)
        advance(feeds)
        for feed, position in sampled_at:
            each = by_sequence[feed.stream.seq_id]
            token = llama_cpp.llama_sampler_sample(each.sampler, self._ctx.ctx, position)
            # End of generation: EOS and the template's end-of-turn token (<|im_end|>), as
            # the vocabulary marks them (what llama-cpp-python's own completion loop checks).
            if llama_vocab_is_eog(self._model.vocab, token):
                self._send(each.job, [], True, None)
                self._release(each, active, free)
                continue
            # The tokens fed back so far, and this one.
            last = each.stream.generated_fed + 1 >= each.job.sampling.max_tokens
            self._send(each.job, [int(token)], last, None)
            if last:
                self._release(each, active, free)
            else:
                each.stream.last_token = int(token)

    def _release(self, each: _Active, active: list[_Active], free: list[int]) -> None:
        """The stream's sequence leaves the cache and its slot frees."""
        active.remove(each)
        self._ctx.kv_cache_seq_rm(each.stream.seq_id, -1, -1)
        each.close()
        heapq.heappush(free, each.stream.seq_id)

    def _send(self, job: Job, ids: list[int], done: bool, error: str | None) -> None:
        if not job.cancelled:  # a client gone has no one to hear it
            self._loop.call_soon_threadsafe(job.deliver, ids, done, error)
