"""Errors as OpenAI clients expect them: ``{"error": {message, type, param, code}}``.

One renderer for :class:`~aria.errors.AriaError` (its ``http_status``, ``openai_type``
and ``code``), plus translations of the framework's own failures: request-validation
errors (422, or 400 for a body that is not JSON), unknown routes (404), wrong
methods (405). Anything else is a bug: a 500 with the traceback in the log, never
in the response. Messages leave with absolute paths cut to their file names (the
server's layout is none of a client's business; the log keeps the full text), and
back-pressure errors carry ``Retry-After``.
"""

from __future__ import annotations

import logging
import math
import re
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from aria.errors import AriaError, InvalidRequest, RateLimited, RequestError

if TYPE_CHECKING:
    from aria.api.metrics import Metrics

__all__ = [
    "UnprocessableRequest",
    "error_body",
    "error_headers",
    "error_response",
    "install_error_handlers",
    "public_message",
]

log = logging.getLogger("aria.api")

# An absolute path of two or more parts that is not inside a URL (no ":" or "/" or a
# word character right before it): "/home/me/.aria/logs/backend-x.log".
_ABSOLUTE_PATH = re.compile(r"(?<![\w:/.~-])/(?:[^\s/'\"()<>,;]+/)+([^\s/'\"()<>,;]*)")


class UnprocessableRequest(RequestError):
    """Well-formed JSON whose fields have the wrong type, range or shape (422)."""

    http_status = 422
    code = "invalid_value"


class _HttpError(RequestError):
    """A routing-level failure from the framework (unknown path, wrong method)."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.http_status = status
        self.code = {404: "not_found", 405: "method_not_allowed"}.get(status, "http_error")


def public_message(message: str) -> str:
    """``message`` with each absolute path reduced to its last part."""
    return _ABSOLUTE_PATH.sub(lambda match: match.group(1) or "/", message)


def error_body(exc: AriaError) -> dict[str, Any]:
    return {
        "error": {
            "message": public_message(exc.message),
            "type": exc.openai_type,
            "param": exc.param,
            "code": exc.code,
        }
    }


def error_headers(exc: AriaError) -> dict[str, str]:
    """``Retry-After`` (whole seconds) for back-pressure errors."""
    if isinstance(exc, RateLimited):
        return {"retry-after": str(max(1, math.ceil(exc.retry_after_s)))}
    return {}


def error_response(
    exc: AriaError, headers: dict[str, str] | None = None, metrics: Metrics | None = None
) -> JSONResponse:
    """The error as a response, counted in ``aria_errors`` when ``metrics`` is given."""
    if metrics is not None:
        metrics.errors.labels(exc.code).inc()
    headers = {**error_headers(exc), **(headers or {})}
    return JSONResponse(error_body(exc), status_code=exc.http_status, headers=headers)


def validation_error(exc: RequestValidationError) -> RequestError:
    """The first problem of a failed validation, as one readable sentence."""
    first = exc.errors()[0]
    if first.get("type") == "json_invalid":
        detail = first.get("ctx", {}).get("error", "")
        return InvalidRequest(f"the request body is not valid JSON: {detail}".rstrip(": "))
    param = _param(tuple(first.get("loc", ())), exc.body)
    message = str(first.get("msg", "invalid value"))
    return UnprocessableRequest(f"{param}: {message}" if param else message, param=param)


def _param(loc: tuple[Any, ...], body: Any) -> str | None:
    """The field path as the client wrote it (``messages.0.content``).

    Pydantic adds union branches to the location (``stop.str``, ``messages.0.user``);
    only the parts that exist in the body (and a missing last field) are kept.
    """
    parts: list[str] = []
    node = body
    steps = [part for part in loc if part != "body"]
    for position, part in enumerate(steps):
        if _has(node, part):
            node = node[part]
        elif position != len(steps) - 1 or not isinstance(node, dict):
            continue
        parts.append(str(part))
    return ".".join(parts) or None


def _has(node: Any, part: Any) -> bool:
    if isinstance(node, dict):
        return part in node
    return isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node)


def install_error_handlers(app: FastAPI) -> None:
    def render(
        request: Request, exc: AriaError, headers: dict[str, str] | None = None
    ) -> JSONResponse:
        return error_response(exc, headers, getattr(request.app.state, "metrics", None))

    async def aria_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, AriaError)
        if exc.http_status >= 500:
            log.warning("%s: %s", exc.code, exc.message)
        return render(request, exc)

    async def invalid(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        return render(request, validation_error(exc))

    async def http_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, HTTPException)
        headers = dict(exc.headers) if exc.headers else None
        return render(request, _HttpError(str(exc.detail), exc.status_code), headers)

    async def crash(request: Request, exc: Exception) -> JSONResponse:
        log.error("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
        return render(request, AriaError("internal error; see the server log"))

    app.add_exception_handler(AriaError, aria_error)
    app.add_exception_handler(RequestValidationError, invalid)
    app.add_exception_handler(HTTPException, http_error)
    app.add_exception_handler(Exception, crash)
