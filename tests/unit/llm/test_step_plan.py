"""The batched engine's step planner: generating streams always advance, prompts are
chunked into the room left, logits are asked only where a token will be sampled."""

from __future__ import annotations

from gpuplane.llm.step_plan import Stream, advance, plan_step


def fed(streams: list[Stream], capacity: int) -> list[tuple[int, tuple[int, ...], int, bool]]:
    feeds = plan_step(streams, capacity)
    advance(feeds)
    return [(f.stream.seq_id, f.tokens, f.first_position, f.wants_logits) for f in feeds]


def test_a_prompt_that_fits_is_fed_whole_and_asks_for_its_last_logits() -> None:
    stream = Stream(0, [5, 6, 7])
    assert fed([stream], 8) == [(0, (5, 6, 7), 0, True)]
    assert stream.generating


def test_generated_tokens_follow_the_prompt_positions() -> None:
    stream = Stream(3, [5, 6, 7])
    fed([stream], 8)
    stream.last_token = 42
    assert fed([stream], 8) == [(3, (42,), 3, True)]
    stream.last_token = 43
    assert fed([stream], 8) == [(3, (43,), 4, True)]


def test_a_long_prompt_is_chunked_and_only_its_last_chunk_wants_logits() -> None:
    stream = Stream(0, list(range(10)))
    assert fed([stream], 4) == [(0, (0, 1, 2, 3), 0, False)]
    assert fed([stream], 4) == [(0, (4, 5, 6, 7), 4, False)]
    assert fed([stream], 4) == [(0, (8, 9), 8, True)]


def test_generating_streams_go_first_and_a_new_prompt_takes_the_room_left() -> None:
    old = Stream(0, [1])
    fed([old], 4)
    old.last_token = 9
    new = Stream(1, [2, 3, 4, 5, 6])
    assert fed([new, old], 4) == [(0, (9,), 1, True), (1, (2, 3, 4), 0, False)]
    old.last_token = 10
    assert fed([new, old], 4) == [(0, (10,), 2, True), (1, (5, 6), 3, True)]


def test_a_stream_waiting_for_its_sample_is_not_fed() -> None:
    stream = Stream(0, [1, 2])
    fed([stream], 4)
    assert fed([stream], 4) == []  # nothing sampled yet (or it just finished)


def test_a_full_batch_leaves_later_prompts_for_the_next_step() -> None:
    streams = [Stream(i, [i] * 3) for i in range(3)]
    assert fed(streams, 4) == [(0, (0, 0, 0), 0, True), (1, (1,), 0, False)]
    assert [s.fed for s in streams] == [3, 1, 0]
