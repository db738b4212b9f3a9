from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from gpuplane.llm.text import TextStream

# A byte-level vocabulary: some tokens are half of a UTF-8 character.
VOCAB = {1: b"Hel", 2: b"lo", 3: b" w", 4: b"orld", 5: "é".encode()[:1], 6: "é".encode()[1:],
         7: b"\n\nUser", 8: b":", 9: b"!"}  # fmt: skip


def decode(ids: list[int]) -> str:
    return b"".join(VOCAB[i] for i in ids).decode("utf-8", errors="replace")


def run(ids: list[int], stops: tuple[str, ...] = ()) -> tuple[list[str], TextStream]:
    stream = TextStream(decode, stops)
    pieces = [stream.push([i]) for i in ids]
    pieces.append(stream.finish())
    return pieces, stream


def test_each_token_goes_out_as_it_comes_and_nothing_is_lost() -> None:
    pieces, stream = run([1, 2, 3, 4])
    assert pieces == ["Hel", "lo", " w", "orld", ""]
    assert stream.tokens == 4 and not stream.stopped


def test_a_character_split_across_tokens_goes_out_whole() -> None:
    pieces, _ = run([1, 5, 6, 9])
    assert pieces == ["Hel", "", "é", "!", ""]


def test_a_stop_sequence_split_across_tokens_ends_the_text_before_it() -> None:
    pieces, stream = run([1, 2, 7, 8, 9], stops=("User:",))
    assert "".join(pieces) == "Hello\n\n"
    assert stream.stopped and stream.push([9]) == "" and stream.finish() == ""


def test_text_held_for_a_stop_that_never_completes_goes_out_at_the_end() -> None:
    pieces, stream = run([1, 2, 8], stops=("o:x",))
    assert pieces[:2] == ["Hel", "l"]  # "o" could start "o:x"
    assert "".join(pieces) == "Hello:" and not stream.stopped


@given(
    ids=st.lists(st.sampled_from(sorted(VOCAB)), max_size=30),
    stops=st.lists(st.sampled_from(["Hel", "lo w", "o", "é", "User:", "\n", "ld!", "xyz"]),
                   max_size=3),
)  # fmt: skip
def test_what_goes_out_is_the_text_cut_at_the_first_stop(ids: list[int], stops: list[str]) -> None:
    """Whatever the tokens and stops: generation ends at the first token after which a stop
    sequence is in the text, and the pieces joined are that text up to the earliest stop in
    it (all of the text when none occurs); nothing after a stop."""
    pieces, stream = run(ids, tuple(stops))
    seen = [decode(ids[:k]).rstrip("\ufffd") for k in range(1, len(ids) + 1)] + [decode(ids)]
    expected, stopped = decode(ids), False
    for text in seen:
        found = [text.find(stop) for stop in stops if stop in text]
        if found:
            expected, stopped = text[: min(found)], True
            break
    assert "".join(pieces) == expected
    assert stream.stopped == stopped


def test_a_stop_that_began_earlier_wins_over_one_that_ended_in_the_same_token() -> None:
    # "lo" completes both "o" and "lo" at once: the answer ends before "lo".
    pieces, stream = run([1, 2, 3], stops=("o", "lo"))
    assert "".join(pieces) == "Hel" and stream.stopped
