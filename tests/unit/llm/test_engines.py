"""Which engine runs where, and which host facts that costs: torch is asked (its import is
3 s on the GPU machine) only where llama.cpp's answer leaves the question open."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from gpuplane.llm.engines import CPU_BATCH_STREAMS, batch_slots, choose_engine, unified_kv


def probe(answer: bool, asked: list[str], name: str) -> Callable[[], bool]:
    def ask() -> bool:
        asked.append(name)
        return answer

    return ask


@pytest.mark.parametrize(
    ("flags", "llama_gpu", "torch_gpu", "chosen", "asked"),
    [
        (("auto", "auto"), True, True, ("llama-cpp", "cuda"), ["llama"]),
        (("auto", "auto"), False, True, ("transformers", "cuda"), ["llama", "torch"]),
        (("auto", "auto"), False, False, ("llama-cpp", "cpu"), ["llama", "torch"]),
        (("auto", "cpu"), True, True, ("llama-cpp", "cpu"), []),
        (("auto", "cuda"), True, False, ("llama-cpp", "cuda"), ["llama"]),
        (("llama-cpp", "auto"), True, False, ("llama-cpp", "cuda"), ["llama"]),
        (("llama-cpp", "auto"), False, True, ("llama-cpp", "cpu"), ["llama"]),
        (("llama-cpp", "cpu"), True, True, ("llama-cpp", "cpu"), ["llama"]),
        (("transformers", "auto"), True, True, ("transformers", "cuda"), ["torch"]),
        (("transformers", "cpu"), True, True, ("transformers", "cpu"), []),
    ],
)
def test_the_engine_and_device_for_the_flags_and_the_host(
    flags: tuple[str, str],
    llama_gpu: bool,
    torch_gpu: bool,
    chosen: tuple[str, str],
    asked: list[str],
) -> None:
    seen: list[str] = []
    result = choose_engine(
        *flags,
        llama_cpp_gpu=probe(llama_gpu, seen, "llama"),
        torch_cuda=probe(torch_gpu, seen, "torch"),
    )
    assert result == chosen
    assert seen == asked


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (("llama-cpp", "cuda"), "no GPU backend"),
        (("transformers", "cuda"), "torch sees none"),
    ],
)
def test_a_device_the_host_cannot_give_is_refused_with_why(
    flags: tuple[str, str], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        choose_engine(*flags, llama_cpp_gpu=lambda: False, torch_cuda=lambda: False)


@pytest.mark.parametrize(
    ("flag", "max_streams", "gpu", "slots"),
    [
        (0, 64, True, 64),  # a GPU decodes every stream together
        (0, 32, False, CPU_BATCH_STREAMS),  # the CPU a few
        (0, 2, False, 2),  # never more than may generate at once (apps/llm/server-cpu.yaml)
        (8, 4, True, 4),
        (1, 32, False, 1),  # the flag wins: one at a time
    ],
)
def test_the_engine_slots_follow_the_device_and_the_flags(
    flag: int, max_streams: int, gpu: bool, slots: int
) -> None:
    assert batch_slots(flag, max_streams, gpu=gpu) == slots


@pytest.mark.parametrize(
    ("choice", "gpu", "unified"),
    [
        ("auto", True, False),  # per stream on a GPU: the unified buffer crashed there
        ("auto", False, True),  # one buffer on the CPU, as measured
        ("unified", True, True),
        ("per-sequence", False, False),
    ],
)
def test_the_kv_layout_follows_the_flag_and_else_the_device(
    choice: str, gpu: bool, unified: bool
) -> None:
    assert unified_kv(choice, gpu=gpu) is unified
