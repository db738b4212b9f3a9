"""The chat model service as a client sees it: a streamed answer, event by event, with when
each event arrived."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any

import httpx2

MODEL = "SmolLM2-135M-Instruct"
COUNTING = "Count from 1 to 100, separated by commas."
# Long enough that no answer ends by itself before its max_tokens.
LONG = "Write the numbers from 1 to 1000 as words, one per line."


def chat(prompt: str = COUNTING, **extra: Any) -> dict[str, Any]:
    return {"model": MODEL, "messages": [{"role": "user", "content": prompt}],
            "temperature": 0, **extra}  # fmt: skip


@dataclass
class Streamed:
    status: int
    events: list[dict[str, Any]] = field(default_factory=list)
    arrivals: list[float] = field(default_factory=list)  # seconds from sending, per event
    done: bool = False
    body: str = ""

    @property
    def text(self) -> str:
        pieces = []
        for event in self.events:
            for choice in event.get("choices", []):
                pieces.append(choice.get("delta", {}).get("content") or choice.get("text") or "")
        return "".join(pieces)

    def content_arrivals(self) -> list[float]:
        return [
            at
            for at, event in zip(self.arrivals, self.events, strict=True)
            if any(c.get("delta", {}).get("content") for c in event.get("choices", []))
        ]


def stream_chat(url: str, body: dict[str, Any], timeout: float = 120) -> Streamed:
    """POST with ``stream: true``; every ``data:`` line parsed as it arrives."""
    sent = time.monotonic()
    with (
        httpx2.Client(trust_env=False, timeout=timeout) as http,
        http.stream("POST", f"{url}/v1/chat/completions", json={**body, "stream": True}) as answer,
    ):
        result = Streamed(answer.status_code)
        if answer.status_code != 200:
            result.body = answer.read().decode()
            return result
        assert answer.headers["content-type"].startswith("text/event-stream")
        for line in answer.iter_lines():
            if line == "data: [DONE]":
                result.done = True
            elif line.startswith("data: "):
                result.events.append(json.loads(line[6:]))
                result.arrivals.append(time.monotonic() - sent)
    return result
