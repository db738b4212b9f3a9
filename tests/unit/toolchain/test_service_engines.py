"""An image whose service needs an engine (the chat model: llama.cpp, or transformers with
gguf's reader) is refused, naming what to install, when its interpreter has none complete:
otherwise it would build and its pods fail at start."""

from __future__ import annotations

import pytest

from gpuplane.toolchain.images import SERVICE_IMAGES, missing_engine

LLM_ENGINES = SERVICE_IMAGES["llm"].engines


@pytest.mark.parametrize(
    "installed",
    [{"aiohttp", "llama-cpp-python"}, {"torch", "transformers", "gguf"}],
)
def test_one_complete_engine_is_enough(installed: set[str]) -> None:
    assert missing_engine(LLM_ENGINES, installed) == ""


@pytest.mark.parametrize("installed", [set(), {"torch", "transformers"}, {"gguf"}])
def test_no_complete_engine_names_each_choice(installed: set[str]) -> None:
    lacking = missing_engine(LLM_ENGINES, installed)
    assert lacking.startswith("llama-cpp-python or transformers with gguf")
    assert "make llm" in lacking


def test_a_service_without_engines_needs_none() -> None:
    assert missing_engine(SERVICE_IMAGES["inference"].engines, set()) == ""
