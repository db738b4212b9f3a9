from __future__ import annotations

from typing import Any

import pytest

from gpuplane.llm.api import Usage, chunk_body, parse_request, response_body, usage_chunk
from gpuplane.shared.openai_errors import ApiError

MODEL = "SmolLM2-135M-Instruct"
CHAT = {"model": MODEL, "messages": [{"role": "user", "content": "hi"}]}


def error_of(body: Any, chat: bool = True) -> ApiError:
    with pytest.raises(ApiError) as caught:
        parse_request(body, chat=chat, max_tokens_limit=512)
    return caught.value


def test_a_chat_request_with_its_defaults() -> None:
    request = parse_request(CHAT, chat=True, max_tokens_limit=512)
    assert request.messages == (("user", "hi"),)
    assert request.sampling.max_tokens == 512  # chat: up to the server's limit
    assert request.sampling.temperature == 1.0 and request.sampling.top_p == 1.0
    assert not request.stream and not request.include_usage


def test_completions_default_to_openais_16_tokens_and_text_parts_join() -> None:
    request = parse_request({"model": MODEL, "prompt": "Once"}, chat=False, max_tokens_limit=512)
    assert request.sampling.max_tokens == 16 and request.prompt == "Once"
    parts = {"model": MODEL, "messages": [{"role": "developer", "content": [
        {"type": "text", "text": "a"}, {"type": "text", "text": "b"}]}]}  # fmt: skip
    assert parse_request(parts, chat=True, max_tokens_limit=8).messages == (("system", "ab"),)


@pytest.mark.parametrize(
    ("change", "param", "fragment"),
    [
        ({"model": "gpt-4o"}, "model", "not served here"),
        ({"messages": []}, "messages", "non-empty array"),
        ({"messages": [{"role": "robot", "content": "x"}]}, "messages", "role"),
        ({"messages": [{"role": [], "content": "x"}]}, "messages", "role"),
        ({"messages": [{"role": "user", "content": [{"type": "image_url"}]}]},
         "messages", "only text parts"),
        ({"max_tokens": 0}, "max_tokens", "positive integer"),
        ({"max_tokens": 513}, "max_tokens", "at most 512"),
        ({"max_completion_tokens": True}, "max_completion_tokens", "positive integer"),
        ({"temperature": 3}, "temperature", "0.0..2.0"),
        ({"temperature": "hot"}, "temperature", "a number"),
        ({"top_p": -1}, "top_p", "0.0..1.0"),
        ({"stop": ["a", "b", "c", "d", "e"]}, "stop", "at most 4"),
        ({"stop": [""]}, "stop", "non-empty"),
        ({"stream": "yes"}, "stream", "boolean"),
        ({"n": 2}, "n", "must be 1"),
        ({"tools": [{"type": "function"}]}, "tools", "not supported"),
        ({"logprobs": True}, "logprobs", "not supported"),
    ],
)  # fmt: skip
def test_bad_requests_name_the_parameter(change: dict[str, Any], param: str, fragment: str) -> None:
    error = error_of({**CHAT, **change})
    assert error.param == param and fragment in error.message
    assert error.status == (404 if param == "model" else 400)
    assert error.body()["error"]["type"] == "invalid_request_error"


def test_a_body_that_is_not_an_object_or_a_prompt_that_is_missing() -> None:
    assert error_of([1, 2]).status == 400
    assert error_of({"model": MODEL}, chat=False).param == "prompt"
    assert error_of({"model": MODEL, "prompt": "x" * 40_000}, chat=False).param == "prompt"


def test_the_shapes_of_an_answer_a_chunk_and_the_usage_event() -> None:
    request = parse_request({**CHAT, "stream": True, "stream_options": {"include_usage": True}},
                            chat=True, max_tokens_limit=64)  # fmt: skip
    usage = Usage(prompt_tokens=5, completion_tokens=3)
    whole = response_body(request, "chatcmpl-1", 7, "Hi!", finish="stop", usage=usage)
    assert whole["object"] == "chat.completion"
    assert whole["choices"] == [{"index": 0, "message": {"role": "assistant", "content": "Hi!"},
                                 "finish_reason": "stop"}]  # fmt: skip
    assert whole["usage"] == {"prompt_tokens": 5, "completion_tokens": 3, "total_tokens": 8}
    first = chunk_body(request, "chatcmpl-1", 7, "Hi", None, first=True)
    assert first["choices"][0]["delta"] == {"role": "assistant", "content": "Hi"}
    last = chunk_body(request, "chatcmpl-1", 7, None, "length")
    assert last["choices"][0] == {"index": 0, "delta": {}, "finish_reason": "length"}
    assert usage_chunk(request, "chatcmpl-1", 7, usage)["choices"] == []
    text = parse_request({"model": MODEL, "prompt": "x"}, chat=False, max_tokens_limit=8)
    assert chunk_body(text, "cmpl-1", 7, "y", None)["choices"][0]["text"] == "y"
    assert (
        response_body(text, "cmpl-1", 7, "y", finish="stop", usage=usage)["object"]
        == "text_completion"
    )
