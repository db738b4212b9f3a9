"""Requests for the chat model service in tests; its streamed answers are read by the
platform's own client (``gpuplane.simulation.chat_stream``)."""

from __future__ import annotations

from typing import Any

from gpuplane.simulation.chat_stream import Streamed, stream_chat

__all__ = ["COUNTING", "LONG", "MODEL", "Streamed", "chat", "stream_chat"]

MODEL = "SmolLM2-135M-Instruct"
COUNTING = "Count from 1 to 100, separated by commas."
# Long enough that no answer ends by itself before its max_tokens.
LONG = "Write the numbers from 1 to 1000 as words, one per line."


def chat(prompt: str = COUNTING, **extra: Any) -> dict[str, Any]:
    return {"model": MODEL, "messages": [{"role": "user", "content": prompt}],
            "temperature": 0, **extra}  # fmt: skip
