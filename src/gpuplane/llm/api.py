"""OpenAI's chat-completions and completions shapes (pure: no I/O, no model).

Accepted: ``messages`` (roles system/user/assistant, string content or text parts) or
``prompt`` (one string), ``max_tokens`` / ``max_completion_tokens``, ``temperature``
(0..2), ``top_p`` (0..1], ``stop`` (a string or up to 4), ``stream`` with
``stream_options.include_usage``, ``n`` 1 only. Anything else OpenAI defines and this
server does not do (``tools``, ``logprobs``, ``n`` > 1) is a 400 naming the parameter,
never silently ignored. Errors carry OpenAI's shape (gpuplane.shared.openai_errors)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from gpuplane.shared.openai_errors import ApiError, served_model

MODEL_ALIASES = ("SmolLM2-135M-Instruct", "HuggingFaceTB/SmolLM2-135M-Instruct")
ROLES = frozenset({"system", "user", "assistant", "developer"})
MAX_MESSAGES = 256
MAX_PROMPT_CHARS = 32_000
MAX_STOPS = 4
MAX_STOP_CHARS = 64
DEFAULT_COMPLETION_TOKENS = 16  # OpenAI's default for /v1/completions
# Parameters OpenAI defines that change the answer and this server cannot honour.
REFUSED = ("tools", "functions", "tool_choice", "logprobs", "top_logprobs", "response_format",
           "logit_bias", "suffix", "echo", "best_of")  # fmt: skip


@dataclass(frozen=True)
class Sampling:
    max_tokens: int
    temperature: float
    top_p: float
    stop: tuple[str, ...]


@dataclass(frozen=True)
class GenerationRequest:
    """What the engine is asked for; ``messages`` for chat, ``prompt`` for completions."""

    chat: bool
    model: str
    messages: tuple[tuple[str, str], ...]
    prompt: str
    sampling: Sampling
    stream: bool
    include_usage: bool


def _number(body: dict[str, Any], name: str, default: float, low: float, high: float) -> float:
    value = body.get(name)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ApiError(400, f"'{name}' must be a number", name)
    if not low <= value <= high:
        raise ApiError(400, f"'{name}' is {value}; it must be within {low}..{high}", name)
    return float(value)


def _max_tokens(body: dict[str, Any], default: int, limit: int) -> int:
    name = "max_completion_tokens" if "max_completion_tokens" in body else "max_tokens"
    value = body.get(name)
    if value is None:
        return min(default, limit)
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ApiError(400, f"'{name}' must be a positive integer", name)
    if value > limit:
        raise ApiError(400, f"'{name}' is {value}; this server generates at most {limit}", name)
    return value


def _stop(raw: Any) -> tuple[str, ...]:
    if raw is None:
        return ()
    stops = [raw] if isinstance(raw, str) else raw
    if not isinstance(stops, list) or len(stops) > MAX_STOPS:
        raise ApiError(400, f"'stop' must be a string or an array of at most {MAX_STOPS}", "stop")
    for item in stops:
        if not isinstance(item, str) or not item or len(item) > MAX_STOP_CHARS:
            raise ApiError(
                400, f"each 'stop' must be a non-empty string of at most {MAX_STOP_CHARS}", "stop"
            )
    return tuple(stops)


def _content(message: dict[str, Any], index: int) -> str:
    content = message.get("content")
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # text parts: [{"type": "text", "text": "..."}]
        texts = []
        for part in content:
            if not isinstance(part, dict) or part.get("type") != "text":
                raise ApiError(
                    400, f"'messages[{index}].content': only text parts are served here",
                    "messages",
                )  # fmt: skip
            text = part.get("text")
            if not isinstance(text, str):
                raise ApiError(400, f"'messages[{index}].content': a text part needs 'text'",
                               "messages")  # fmt: skip
            texts.append(text)
        return "".join(texts)
    raise ApiError(400, f"'messages[{index}].content' must be a string or text parts", "messages")


def _messages(raw: Any) -> tuple[tuple[str, str], ...]:
    if not isinstance(raw, list) or not raw:
        raise ApiError(400, "'messages' must be a non-empty array", "messages")
    if len(raw) > MAX_MESSAGES:
        raise ApiError(400, f"'messages' has {len(raw)} items; at most {MAX_MESSAGES}", "messages")
    out = []
    for index, message in enumerate(raw):
        if not isinstance(message, dict):
            raise ApiError(400, f"'messages[{index}]' must be an object", "messages")
        role = message.get("role")
        if not isinstance(role, str) or role not in ROLES:
            raise ApiError(
                400, f"'messages[{index}].role' must be one of {sorted(ROLES)}", "messages"
            )
        out.append(("system" if role == "developer" else role, _content(message, index)))
    if sum(len(text) for _, text in out) > MAX_PROMPT_CHARS:
        raise ApiError(400, f"the messages exceed {MAX_PROMPT_CHARS} characters", "messages")
    return tuple(out)


def parse_request(body: Any, *, chat: bool, max_tokens_limit: int) -> GenerationRequest:
    model = served_model(body, MODEL_ALIASES)
    for name in REFUSED:
        if body.get(name) not in (None, False):
            raise ApiError(400, f"'{name}' is not supported by this server", name)
    if body.get("n", 1) != 1:
        raise ApiError(400, "'n' must be 1 here", "n")
    stream = body.get("stream", False)
    if not isinstance(stream, bool):
        raise ApiError(400, "'stream' must be a boolean", "stream")
    options = body.get("stream_options") or {}
    if not isinstance(options, dict):
        raise ApiError(400, "'stream_options' must be an object", "stream_options")
    sampling = Sampling(
        max_tokens=_max_tokens(
            body, max_tokens_limit if chat else DEFAULT_COMPLETION_TOKENS, max_tokens_limit
        ),
        temperature=_number(body, "temperature", 1.0, 0.0, 2.0),
        top_p=_number(body, "top_p", 1.0, 0.0, 1.0) or 1.0,
        stop=_stop(body.get("stop")),
    )
    prompt: Any = ""
    if chat:
        messages = _messages(body.get("messages"))
    else:
        prompt = body.get("prompt")
        if not isinstance(prompt, str) or not prompt:
            raise ApiError(400, "'prompt' must be a non-empty string", "prompt")
        if len(prompt) > MAX_PROMPT_CHARS:
            raise ApiError(400, f"'prompt' exceeds {MAX_PROMPT_CHARS} characters", "prompt")
        messages = ()
    return GenerationRequest(
        chat=chat, model=model, messages=messages, prompt=prompt, sampling=sampling,
        stream=stream, include_usage=bool(options.get("include_usage")),
    )  # fmt: skip


@dataclass(frozen=True)
class Usage:
    prompt_tokens: int
    completion_tokens: int

    def body(self) -> dict[str, int]:
        total = self.prompt_tokens + self.completion_tokens
        return {"prompt_tokens": self.prompt_tokens, "completion_tokens": self.completion_tokens,
                "total_tokens": total}  # fmt: skip


def _head(
    request: GenerationRequest, completion_id: str, created: int, kind: str
) -> dict[str, Any]:
    return {"id": completion_id, "object": kind, "created": created, "model": request.model}


def response_body(
    request: GenerationRequest, completion_id: str, created: int, text: str, *, finish: str,
    usage: Usage,
) -> dict[str, Any]:  # fmt: skip
    """The whole answer of a request without ``stream``."""
    if request.chat:
        body = _head(request, completion_id, created, "chat.completion")
        message = {"role": "assistant", "content": text}
        body["choices"] = [{"index": 0, "message": message, "finish_reason": finish}]
    else:
        body = _head(request, completion_id, created, "text_completion")
        choice = {"index": 0, "text": text, "logprobs": None, "finish_reason": finish}
        body["choices"] = [choice]
    body["usage"] = usage.body()
    return body


def chunk_body(
    request: GenerationRequest, completion_id: str, created: int, text: str | None,
    finish: str | None, *, first: bool = False,
) -> dict[str, Any]:  # fmt: skip
    """One server-sent event of a streamed answer: a piece of text, or the finish reason."""
    if request.chat:
        body = _head(request, completion_id, created, "chat.completion.chunk")
        delta: dict[str, str] = {"role": "assistant"} if first else {}
        if text:
            delta["content"] = text
        body["choices"] = [{"index": 0, "delta": delta, "finish_reason": finish}]
    else:
        body = _head(request, completion_id, created, "text_completion")
        choice = {"index": 0, "text": text or "", "logprobs": None, "finish_reason": finish}
        body["choices"] = [choice]
    return body


def usage_chunk(
    request: GenerationRequest, completion_id: str, created: int, usage: Usage
) -> dict[str, Any]:
    """The last event when ``stream_options.include_usage`` is set: no choices, the usage."""
    kind = "chat.completion.chunk" if request.chat else "text_completion"
    body = _head(request, completion_id, created, kind)
    body["choices"] = []
    body["usage"] = usage.body()
    return body
