"""The chat model service as a client sees it: a streamed answer (OpenAI's server-sent
events), event by event, with when each event arrived."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any

import httpx2


@dataclass
class Streamed:
    status: int  # 0: no HTTP answer (connection error, timeout)
    events: list[dict[str, Any]] = field(default_factory=list)
    arrivals: list[float] = field(default_factory=list)  # seconds from sending, per event
    done: bool = False  # the stream ended with "data: [DONE]"
    body: str = ""  # an answer that was not a stream, or why there was none

    @property
    def text(self) -> str:
        pieces = []
        for event in self.events:
            for choice in event.get("choices", []):
                pieces.append(choice.get("delta", {}).get("content") or choice.get("text") or "")
        return "".join(pieces)

    def content_arrivals(self) -> list[float]:
        """When each event that carried text arrived (the first is the first token)."""
        return [
            at
            for at, event in zip(self.arrivals, self.events, strict=True)
            if any(c.get("delta", {}).get("content") for c in event.get("choices", []))
        ]


def stream_chat(url: str, body: dict[str, Any], timeout: float = 120) -> Streamed:
    """POST ``body`` to ``url``/v1/chat/completions with ``stream: true``; every ``data:``
    line is parsed as it arrives. A 200 that is not an event stream comes back with its
    body and ``done`` false."""
    sent = time.monotonic()
    try:
        with (
            httpx2.Client(trust_env=False, timeout=timeout) as http,
            http.stream(
                "POST", f"{url}/v1/chat/completions", json={**body, "stream": True}
            ) as answer,
        ):
            result = Streamed(answer.status_code)
            kind = answer.headers.get("content-type", "")
            if answer.status_code != 200 or not kind.startswith("text/event-stream"):
                result.body = answer.read().decode(errors="replace")
                return result
            for line in answer.iter_lines():
                if line == "data: [DONE]":
                    result.done = True
                elif line.startswith("data: "):
                    result.events.append(json.loads(line[6:]))
                    result.arrivals.append(time.monotonic() - sent)
    except httpx2.HTTPError as error:
        return Streamed(0, body=f"{type(error).__name__}: {error}")
    return result
