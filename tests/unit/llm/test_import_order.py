"""The chat service loads llama.cpp before aiohttp's C++ extension (frozenlist): on the H100
a CUDA build of llama.cpp crashed loading its model in every process that had imported
frozenlist first (docs/llm.md). Checked in a fresh interpreter, by the order Python itself
reports its imports in (``-X importtime`` lists each module once it is loaded)."""

from __future__ import annotations

import subprocess
import sys


def loaded_order(module: str) -> list[str]:
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", f"import {module}"],
        capture_output=True, text=True, timeout=120, check=True,
    )  # fmt: skip
    return [
        line.rsplit("|", 1)[1].strip()
        for line in done.stderr.splitlines()
        if line.startswith("import time:") and "|" in line
    ]


def test_llama_cpp_is_loaded_before_frozenlist_and_aiohttp() -> None:
    order = loaded_order("gpuplane.llm.main")
    # llama_cpp.llama_cpp is the module whose body loads libllama and ggml's libraries.
    native = "llama_cpp.llama_cpp"
    assert native in order, "llama-cpp-python is not installed here (make llm)"
    assert order.index(native) < order.index("frozenlist")
    assert order.index(native) < order.index("aiohttp")
