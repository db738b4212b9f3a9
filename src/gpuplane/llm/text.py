"""Token ids in, text out, as a stream (pure: the decoder is passed in).

A byte-level tokenizer splits characters across tokens, so decoding token by token would
emit broken characters: the whole generated sequence is decoded each time and only the new
suffix goes out, minus a trailing U+FFFD (a character still incomplete). A stop sequence
may also arrive split across tokens: text that could be the start of one is held back
until it either completes (the answer ends before it) or cannot (it goes out)."""

from __future__ import annotations

from collections.abc import Callable

INCOMPLETE = "\ufffd"


class TextStream:
    def __init__(self, decode: Callable[[list[int]], str], stops: tuple[str, ...]) -> None:
        self._decode = decode
        self._stops = stops
        self._ids: list[int] = []
        self._sent = 0  # characters of the decoded text already emitted
        self.stopped = False

    @property
    def tokens(self) -> int:
        return len(self._ids)

    def push(self, ids: list[int]) -> str:
        """The text that may go out now that ``ids`` were generated ('' if none)."""
        if self.stopped:
            return ""
        self._ids.extend(ids)
        text = self._decode(self._ids)
        if text.endswith(INCOMPLETE):
            text = text.rstrip(INCOMPLETE)
        return self._release(text, final=False)

    def finish(self) -> str:
        """What was held back, at the end of generation (no stop sequence completed)."""
        if self.stopped:
            return ""
        return self._release(self._decode(self._ids), final=True)

    def _release(self, text: str, *, final: bool) -> str:
        # One token may complete several stops (or one that began before another): the
        # answer ends before the earliest of them in the text.
        found = [
            at
            for stop in self._stops
            if (at := text.find(stop, max(0, self._sent - len(stop) + 1))) != -1
        ]
        if found:
            self.stopped = True
            return self._take(text, min(found))
        if final:
            return self._take(text, len(text))
        return self._take(text, len(text) - self._held(text))

    def _held(self, text: str) -> int:
        """Characters at the end of ``text`` that could begin a stop sequence."""
        longest = 0
        for stop in self._stops:
            for size in range(min(len(stop) - 1, len(text) - self._sent), longest, -1):
                if text.endswith(stop[:size]):
                    longest = size
                    break
        return longest

    def _take(self, text: str, end: int) -> str:
        piece = text[self._sent : end] if end > self._sent else ""
        self._sent = max(self._sent, end)
        return piece
