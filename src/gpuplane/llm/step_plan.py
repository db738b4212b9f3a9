"""What one decoding step of a batched engine feeds, decided without the engine.

Every stream in a batch has its own sequence in the KV cache. A step feeds, in this order:
one token for every stream that is generating (its last sampled token), then prompt tokens
of streams still reading their prompt, in arrival order, as many as the batch still holds
(chunked prefill: a long prompt spreads over steps and never stalls the generating
streams). A stream wants logits when the step feeds its last prompt token or its latest
token: only those are sampled."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class Stream:
    seq_id: int
    prompt: list[int]
    fed: int = 0  # prompt tokens in the cache so far
    generated_fed: int = 0  # generated tokens in the cache so far
    last_token: int | None = None  # sampled, not yet fed

    @property
    def generating(self) -> bool:
        return self.fed == len(self.prompt)


@dataclass(frozen=True)
class Feed:
    stream: Stream
    tokens: tuple[int, ...]
    first_position: int
    wants_logits: bool
    generated: bool  # the stream's latest token, not a prompt chunk


def plan_step(streams: list[Stream], capacity: int) -> list[Feed]:
    """The feeds of one step, at most ``capacity`` tokens in all (the batch's size). A
    generating stream always gets its token: the caller admits no more streams than the
    batch holds."""
    feeds: list[Feed] = []
    room = capacity
    for stream in streams:
        if stream.generating and stream.last_token is not None:
            position = len(stream.prompt) + stream.generated_fed
            feeds.append(Feed(stream, (stream.last_token,), position, True, True))
            room -= 1
    for stream in streams:
        if stream.generating or room <= 0:
            continue
        chunk = stream.prompt[stream.fed : stream.fed + room]
        ends_prompt = stream.fed + len(chunk) == len(stream.prompt)
        feeds.append(Feed(stream, tuple(chunk), stream.fed, ends_prompt, False))
        room -= len(chunk)
    return feeds


def advance(feeds: list[Feed]) -> None:
    """After the step ran: prompt chunks are in the cache, fed tokens are consumed."""
    for feed in feeds:
        if feed.generated:
            feed.stream.generated_fed += 1
            feed.stream.last_token = None
        else:
            feed.stream.fed += len(feed.tokens)
