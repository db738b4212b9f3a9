"""OpenAI's error shape, shared by the services that speak its API (embeddings, chat):
``{"error": {"message", "type", "param", "code"}}`` with the HTTP status beside it, and
the request body read as JSON with the parser's own limits turned into a 400."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson


@dataclass(frozen=True)
class ApiError(Exception):
    status: int
    message: str
    param: str | None = None
    code: str | None = None
    kind: str = "invalid_request_error"

    def body(self) -> dict[str, Any]:
        return {
            "error": {
                "message": self.message,
                "type": self.kind,
                "param": self.param,
                "code": self.code,
            }
        }


def parse_json_body(raw: bytes) -> Any:
    """The body as JSON, or the ApiError (400) that says why not."""
    try:
        return orjson.loads(raw)
    except RecursionError:
        raise ApiError(400, "the body is not JSON this server reads: nested too deep") from None
    except ValueError as error:
        if "depth limit" in str(error):  # orjson reads at most 1,024 levels
            raise ApiError(400, "the body is not JSON this server reads: nested too deep") from None
        raise ApiError(400, f"the body is not JSON: {error}") from None


def served_model(body: Any, aliases: tuple[str, ...]) -> str:
    """The body's ``model`` when it is one this server serves; else the 400 or 404."""
    if not isinstance(body, dict):
        raise ApiError(400, "the request body must be a JSON object")
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise ApiError(400, "'model' is required (a string)", "model")
    if model not in aliases:
        raise ApiError(
            404, f"model {model[:80]!r} is not served here; this server serves {aliases[0]}",
            "model", "model_not_found",
        )  # fmt: skip
    return model
