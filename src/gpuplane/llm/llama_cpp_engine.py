"""The CPU engine: llama.cpp through llama-cpp-python, reading the GGUF file as it ships
(Q4_1 weights, llama.cpp's own quantised kernels, the chat template from the file's
metadata, rendered by llama-cpp-python's formatter).

One llama.cpp context decodes one sequence at a time: streams take turns, a whole answer
each, in arrival order (the server's slot limit bounds how many wait). On two cores a
second sequence in the same step would halve each one's speed anyway; the GPU engine is
the one that batches streams."""

from __future__ import annotations

import asyncio
import os
import queue
import threading
from pathlib import Path
from typing import Any

from llama_cpp import Llama, llama_vocab_is_eog
from llama_cpp.llama_chat_format import Jinja2ChatFormatter

from gpuplane.llm.engines import GGUF_NAME, Job


class LlamaCppEngine:
    device = "cpu"

    def __init__(self, model_dir: Path, loop: asyncio.AbstractEventLoop, context: int) -> None:
        threads = len(os.sched_getaffinity(0))
        self._llm = Llama(
            model_path=str(model_dir / GGUF_NAME), n_ctx=context, n_threads=threads,
            n_threads_batch=threads, n_batch=min(context, 512), verbose=False,
        )  # fmt: skip
        self.context = context
        self.device_name = f"llama.cpp CPU, {threads} threads"
        metadata = self._llm.metadata
        vocab = self._llm.tokenizer_
        eos = self._llm.token_eos()
        self._format = Jinja2ChatFormatter(
            metadata["tokenizer.chat_template"],
            eos_token=vocab.detokenize([eos], special=True).decode(),
            bos_token=vocab.detokenize([self._llm.token_bos()], special=True).decode(),
        )
        # End of generation: EOS and the template's end-of-turn token (<|im_end|>), as the
        # vocabulary marks them (what llama-cpp-python's own completion loop checks).
        self._is_end = llama_vocab_is_eog
        self._vocab = self._llm._model.vocab  # the handle that check takes
        self._loop = loop
        self._jobs: queue.SimpleQueue[Job | None] = queue.SimpleQueue()
        self._worker = threading.Thread(target=self._run, name="llama-cpp", daemon=True)
        self._worker.start()

    def chat_ids(self, messages: tuple[tuple[str, str], ...]) -> list[int]:
        listed: Any = [{"role": role, "content": text} for role, text in messages]
        rendered = self._format(messages=listed)
        # The template writes the special tokens as text: they are read back as specials.
        return list(self._llm.tokenize(rendered.prompt.encode(), add_bos=False, special=True))

    def text_ids(self, prompt: str) -> list[int]:
        return list(self._llm.tokenize(prompt.encode(), add_bos=False, special=False))

    def decode(self, ids: list[int]) -> str:
        return self._llm.detokenize(ids).decode("utf-8", errors="replace")

    def submit(self, job: Job) -> None:
        self._jobs.put(job)

    def cancel(self, job: Job) -> None:
        job.cancelled = True  # the worker checks between tokens

    def close(self) -> None:
        self._jobs.put(None)

    def _run(self) -> None:
        while (job := self._jobs.get()) is not None:
            try:
                self._generate(job)
            except Exception as error:  # noqa: BLE001 - a failed job must not end the worker
                self._send(job, [], True, f"{type(error).__name__}: {error}")

    def _generate(self, job: Job) -> None:
        if job.cancelled:
            return
        sampling = job.sampling
        tokens: Any = self._llm.generate(
            job.prompt_ids, temp=sampling.temperature, top_p=sampling.top_p, top_k=0,
            min_p=0.0, repeat_penalty=1.0, reset=True,
        )  # fmt: skip
        for produced, token in enumerate(tokens, start=1):
            if job.cancelled:
                return
            if self._is_end(self._vocab, token):
                break
            self._send(job, [int(token)], False, None)
            if produced >= sampling.max_tokens:
                break
        self._send(job, [], True, None)

    def _send(self, job: Job, ids: list[int], done: bool, error: str | None) -> None:
        self._loop.call_soon_threadsafe(job.deliver, ids, done, error)
