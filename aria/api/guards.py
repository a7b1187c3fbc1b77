"""ASGI guards in front of the routes: bearer-key authentication and the body limit.

Both answer in OpenAI's error format and run before FastAPI parses anything. The
body limit rejects a too-large ``Content-Length`` at once and otherwise reads at most
``max_bytes + 1`` bytes, so a chunked upload can never make the server buffer more.
"""

from __future__ import annotations

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from aria.api.errors import error_response
from aria.api.keys import KeyStore
from aria.api.metrics import Metrics
from aria.errors import AriaError, AuthenticationError, PayloadTooLarge

__all__ = ["BearerAuth", "BodyLimit"]


class BearerAuth:
    """Require ``Authorization: Bearer <key>`` on every path but the open ones."""

    def __init__(
        self, app: ASGIApp, keys: KeyStore, open_paths: frozenset[str], metrics: Metrics
    ) -> None:
        self.app = app
        self.keys = keys
        self.open_paths = open_paths
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in self.open_paths:
            await self.app(scope, receive, send)
            return
        scheme, _, token = Headers(scope=scope).get("authorization", "").partition(" ")
        try:
            key = (
                self.keys.identify(token.strip())
                if scheme.lower() == "bearer" and token.strip()
                else None
            )
        except AriaError as exc:  # e.g. an unreadable keys file: say so, not "internal error"
            await error_response(exc, {}, self.metrics)(scope, receive, send)
            return
        if key is not None:
            scope.setdefault("state", {})["api_key"] = key  # whose memory (aria.api.memory)
            await self.app(scope, receive, send)
            return
        error = AuthenticationError(
            "a valid API key is required: send `Authorization: Bearer <key>` "
            "(create one with `aria api key create NAME`)"
        )
        response = error_response(error, {"www-authenticate": "Bearer"}, self.metrics)
        await response(scope, receive, send)


class BodyLimit:
    """Refuse request bodies larger than ``max_bytes`` with a 413."""

    def __init__(self, app: ASGIApp, max_bytes: int, metrics: Metrics) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "OPTIONS"):
            await self.app(scope, receive, send)
            return
        declared = Headers(scope=scope).get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await self._refuse(scope, receive, send)
            return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return  # the client left before sending its body
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                await self._refuse(scope, receive, send)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        error = PayloadTooLarge(
            f"the request body is larger than this server's limit of {self.max_bytes} bytes"
        )
        response = error_response(error, {"connection": "close"}, self.metrics)
        await response(scope, receive, send)
