"""ASGI guards in front of the routes, each answering in OpenAI's error format before
FastAPI parses anything. Outermost first:

* :class:`ConcurrencyLimit` -- at most ``api.max_connections`` requests in progress
  (503 ``server_busy``): what holds a connection open is a request in progress, since
  hypercorn closes idle keep-alive connections and slow headers after 5 s;
* :class:`HostCheck` -- a keyless API answers only to loopback names and its own
  host (421): a web page that rebinds its DNS name to 127.0.0.1 sends its own name;
* :class:`OriginCheck` -- a browser request from an origin CORS does not allow (403);
* :class:`BearerAuth` -- ``Authorization: Bearer <key>`` when keys are required, and
  which key it was (``scope["state"]["api_key_id"]``);
* :class:`PerKeyLimit` -- requests in progress per API key (429);
* :class:`BodyLimit` -- a too-large ``Content-Length`` is refused at once (413);
  otherwise at most ``max_bytes + 1`` bytes are read, within ``timeout_s`` (408), so
  neither a chunked upload nor a client dripping bytes can hold the server.
"""

from __future__ import annotations

import ipaddress
from collections import Counter
from urllib.parse import urlsplit

import anyio
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from aria.api.errors import error_response
from aria.api.metrics import Metrics
from aria.apikeys import KeyStore
from aria.errors import (
    AriaError,
    AuthenticationError,
    MisdirectedRequest,
    OriginRefused,
    PayloadTooLarge,
    RateLimited,
    RequestTimeout,
    ServerBusy,
)

__all__ = [
    "BearerAuth",
    "BodyLimit",
    "ConcurrencyLimit",
    "HostCheck",
    "OriginCheck",
    "PerKeyLimit",
    "host_name",
]

_CLOSE = {"connection": "close"}


async def _refuse(
    error: AriaError,
    metrics: Metrics,
    scope: Scope,
    receive: Receive,
    send: Send,
    headers: dict[str, str] | None = None,
) -> None:
    await error_response(error, headers, metrics)(scope, receive, send)


def _key_id(scope: Scope) -> str | None:
    state = scope.get("state")
    key = state.get("api_key_id") if isinstance(state, dict) else None
    return key if isinstance(key, str) else None


def host_name(host: str) -> str:
    """The name in a ``Host`` header or URL authority: no port, brackets or final dot."""
    host = host.strip().casefold()
    if host.startswith("["):
        return host[1:].partition("]")[0]
    if host.count(":") == 1:
        host = host.partition(":")[0]
    return host.rstrip(".")


def _is_loopback_name(name: str) -> bool:
    if name == "localhost" or name.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


class ConcurrencyLimit:
    """Refuse requests beyond ``limit`` in progress (``/health`` is always answered)."""

    def __init__(self, app: ASGIApp, limit: int, metrics: Metrics) -> None:
        self.app = app
        self.limit = limit
        self.metrics = metrics
        self.in_progress = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] == "/health":
            await self.app(scope, receive, send)
            return
        if self.in_progress >= self.limit:
            error = ServerBusy(
                f"this server already has {self.limit} requests in progress "
                "(api.max_connections); retry shortly"
            )
            await _refuse(error, self.metrics, scope, receive, send, _CLOSE)
            return
        self.in_progress += 1
        try:
            await self.app(scope, receive, send)
        finally:
            self.in_progress -= 1


class HostCheck:
    """Answer only requests whose ``Host`` is a loopback name or one of ``allowed``."""

    def __init__(self, app: ASGIApp, allowed: frozenset[str], metrics: Metrics) -> None:
        self.app = app
        self.allowed = frozenset(host_name(name) for name in allowed)
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        host = Headers(scope=scope).get("host") if scope["type"] == "http" else None
        if host is not None:
            name = host_name(host)
            if not _is_loopback_name(name) and name not in self.allowed:
                error = MisdirectedRequest(
                    f"this API does not answer to the host name {name[:100]!r} (it needs no "
                    "key, so it only answers to loopback names; add names to api.allowed_hosts)"
                )
                await _refuse(error, self.metrics, scope, receive, send, _CLOSE)
                return
        await self.app(scope, receive, send)


class OriginCheck:
    """Refuse browser requests from origins other than the page's own and ``allowed``."""

    def __init__(self, app: ASGIApp, allowed: list[str], metrics: Metrics) -> None:
        self.app = app
        self.any = "*" in allowed
        self.allowed = frozenset(origin.rstrip("/").casefold() for origin in allowed)
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and not self.any:
            headers = Headers(scope=scope)
            origin = headers.get("origin")
            if origin is not None and not self._allowed(origin, headers.get("host", "")):
                error = OriginRefused(
                    f"requests from the web origin {origin[:100]!r} are not allowed; list it "
                    "in api.cors_origins"
                )
                await _refuse(error, self.metrics, scope, receive, send)
                return
        await self.app(scope, receive, send)

    def _allowed(self, origin: str, host: str) -> bool:
        folded = origin.strip().rstrip("/").casefold()
        if folded in self.allowed:
            return True
        authority = urlsplit(folded).netloc
        return bool(authority) and authority == host.strip().casefold()  # same origin


class BearerAuth:
    """Require ``Authorization: Bearer <key>`` on every path but the open ones (where a
    valid key still counts: ``/health`` then shows its details)."""

    def __init__(
        self, app: ASGIApp, keys: KeyStore, open_paths: frozenset[str], metrics: Metrics
    ) -> None:
        self.app = app
        self.keys = keys
        self.open_paths = open_paths
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        scheme, _, token = Headers(scope=scope).get("authorization", "").partition(" ")
        try:
            key = (
                self.keys.find(token.strip())
                if scheme.lower() == "bearer" and token.strip()
                else None
            )
        except AriaError as exc:  # e.g. an unreadable keys file: say so, not "internal error"
            await _refuse(exc, self.metrics, scope, receive, send)
            return
        if key is not None:
            scope.setdefault("state", {})["api_key_id"] = key.id
        elif scope["path"] not in self.open_paths:
            error = AuthenticationError(
                "a valid API key is required: send `Authorization: Bearer <key>` "
                "(create one with `aria api key create NAME`)"
            )
            await _refuse(error, self.metrics, scope, receive, send, {"www-authenticate": "Bearer"})
            return
        await self.app(scope, receive, send)


class PerKeyLimit:
    """At most ``limit`` inference requests (POSTs) in progress per API key."""

    def __init__(self, app: ASGIApp, limit: int, metrics: Metrics) -> None:
        self.app = app
        self.limit = limit
        self.metrics = metrics
        self.in_progress: Counter[str] = Counter()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        key = _key_id(scope) if scope["type"] == "http" and scope["method"] == "POST" else None
        if key is None:
            await self.app(scope, receive, send)
            return
        if self.in_progress[key] >= self.limit:
            error = RateLimited(
                f"API key {key} already has {self.limit} requests in progress "
                "(api.max_requests_per_key)"
            )
            await _refuse(error, self.metrics, scope, receive, send)
            return
        self.in_progress[key] += 1
        try:
            await self.app(scope, receive, send)
        finally:
            self.in_progress[key] -= 1
            if not self.in_progress[key]:
                del self.in_progress[key]


class BodyLimit:
    """Refuse request bodies larger than ``max_bytes`` (413) or slower than ``timeout_s`` (408)."""

    def __init__(self, app: ASGIApp, max_bytes: int, timeout_s: float, metrics: Metrics) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.timeout_s = timeout_s
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "OPTIONS"):
            await self.app(scope, receive, send)
            return
        declared = Headers(scope=scope).get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await self._too_large(scope, receive, send)
            return
        chunks: list[bytes] = []
        size = 0
        with anyio.move_on_after(self.timeout_s) as deadline:
            while True:
                message = await receive()
                if message["type"] != "http.request":
                    return  # the client left before sending its body
                chunk = message.get("body", b"")
                size += len(chunk)
                if size > self.max_bytes:
                    await self._too_large(scope, receive, send)
                    return
                chunks.append(chunk)
                if not message.get("more_body", False):
                    break
        if deadline.cancelled_caught:
            error = RequestTimeout(
                f"the request body did not arrive within {self.timeout_s:g} s (api.body_timeout_s)"
            )
            await _refuse(error, self.metrics, scope, receive, send, _CLOSE)
            return
        body = b"".join(chunks)
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    async def _too_large(self, scope: Scope, receive: Receive, send: Send) -> None:
        error = PayloadTooLarge(
            f"the request body is larger than this server's limit of {self.max_bytes} bytes"
        )
        await _refuse(error, self.metrics, scope, receive, send, _CLOSE)
