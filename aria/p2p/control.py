"""The node's local control channel: 127.0.0.1 TCP, one token-authenticated request per connection.

The running node listens on an ephemeral loopback port and writes
``ARIA_HOME/node/control.json`` (mode 0600: port, token, pid, peer id). Only a
process that can read that file can talk to the node, and nothing off the machine
can reach the port. Each connection carries one request frame and one response
frame (the framing of ``aria.p2p.codec``, JSON bodies):

    request   {"token": "...", "op": "status" | "peers" | "find", "args": {...}}
    response  {"ok": true, "result": ...}  or  {"ok": false, "error": <AriaError.to_wire()>}

Errors keep their class across the channel (``aria.errors.from_wire``): a peer's
``context_length_exceeded`` reaches the API as ``ContextLengthExceeded``.

New operations register a handler under a new ``op`` name; ``NodeClient`` is the
synchronous client the CLI uses; the API relays streams with :meth:`NodeClient.astream`
on its own event loop (no thread pinned per chunk). Either side may start first: the
client simply finds no node until the file appears and the port answers.
"""

from __future__ import annotations

import contextlib
import hmac
import json
import logging
import os
import secrets
import socket
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import anyio
import trio
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from aria.config import AriaPaths
from aria.errors import AriaError, NodeNotRunning, PeerError, from_wire
from aria.files import write_atomic
from aria.p2p.codec import CodecError, FrameDecoder, Violation, encode_frame
from aria.p2p.spec import load_spec
from aria.p2p.views import ModelProvider, NetworkStatus, PeerView

__all__ = ["ControlServer", "NodeClient", "control_file", "control_token", "new_token"]

log = logging.getLogger(__name__)

Handler = Callable[[dict[str, Any]], Awaitable[Any]]

_REQUEST_READ_TIMEOUT_S = 5.0


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid")
    token: str = Field(max_length=256)
    op: str = Field(max_length=64)
    args: dict[str, Any] = Field(default_factory=dict)


class _ControlFile(BaseModel):
    model_config = ConfigDict(extra="ignore")
    port: int = Field(ge=1, le=65535)
    token: str
    pid: int
    peer_id: str


def control_file(paths: AriaPaths) -> Path:
    return paths.node / "control.json"


def new_token() -> str:
    return secrets.token_urlsafe(32)


def control_token(paths: AriaPaths) -> str | None:
    """The running node's control token (None without a control file). The node also
    proves with it, to this machine's API, that a request it relays is a peer's."""
    try:
        return _ControlFile.model_validate_json(control_file(paths).read_text("utf-8")).token
    except (OSError, ValidationError):
        return None


def _frame(obj: Any, limit: int) -> bytes:
    return encode_frame(json.dumps(obj, separators=(",", ":")).encode("utf-8"), limit)


class ControlServer:
    """Serves ``handlers`` to local clients holding the token."""

    def __init__(
        self, paths: AriaPaths, peer_id: str, handlers: Mapping[str, Handler], token: str
    ) -> None:
        self._paths = paths
        self._peer_id = peer_id
        self._handlers = dict(handlers)
        self._token = token
        self._limit = load_spec().control_frame

    async def serve(self, *, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
        port = listeners[0].socket.getsockname()[1]
        info = {"port": port, "token": self._token, "pid": os.getpid(), "peer_id": self._peer_id}
        write_atomic(control_file(self._paths), json.dumps(info))
        task_status.started(port)
        await trio.serve_listeners(self._handle, listeners)

    async def _handle(self, stream: trio.SocketStream) -> None:
        async with stream:
            response = await self._respond(stream)
            with contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError):
                if isinstance(response, dict):
                    await stream.send_all(_frame(response, self._limit))
                else:
                    await self._stream_out(stream, response)

    async def _stream_out(self, stream: trio.SocketStream, items: AsyncIterator[Any]) -> None:
        """A streaming op: ``{"ok", "stream"}``, one ``{"item"}`` frame per item, then
        ``{"ok", "end"}`` or an error frame. A client that hangs up closes ``items``."""
        try:
            await stream.send_all(_frame({"ok": True, "stream": True}, self._limit))
            try:
                async for item in items:
                    await stream.send_all(_frame({"item": item}, self._limit))
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                raise
            except AriaError as exc:
                await stream.send_all(_frame(_error(exc), self._limit))
                return
            except Exception:
                log.exception("streaming control operation failed")
                await stream.send_all(
                    _frame(_refused("internal_error", "stream failed"), self._limit)
                )
                return
            await stream.send_all(_frame({"ok": True, "end": True}, self._limit))
        finally:
            with trio.CancelScope(shield=True):
                await items.aclose()  # type: ignore[attr-defined]

    async def _read_request(self, stream: trio.SocketStream) -> _Request:
        decoder = FrameDecoder(self._limit)
        with trio.fail_after(_REQUEST_READ_TIMEOUT_S):
            while True:
                data = await stream.receive_some(65536)
                if not data:
                    raise CodecError(Violation.TRUNCATED, "connection closed before a request")
                frames = decoder.feed(data)
                if frames:
                    return _Request.model_validate_json(frames[0])

    async def _respond(self, stream: trio.SocketStream) -> dict[str, Any] | AsyncIterator[Any]:
        try:
            request = await self._read_request(stream)
        except (CodecError, ValidationError, trio.TooSlowError, trio.BrokenResourceError):
            return _refused("bad_request", "the control request was malformed or incomplete")
        if not hmac.compare_digest(request.token.encode(), self._token.encode()):
            return _refused("unauthorized", "wrong control token")
        handler = self._handlers.get(request.op)
        if handler is None:
            return _refused("unknown_op", f"unknown control operation {request.op!r}")
        try:
            result = await handler(request.args)
        except AriaError as exc:
            return _error(exc)
        except Exception:
            log.exception("control operation %s failed", request.op)
            return _refused("internal_error", f"the node failed to run {request.op!r}")
        if isinstance(result, AsyncIterator):
            return result
        return {"ok": True, "result": result}


def _error(exc: AriaError) -> dict[str, Any]:
    return {"ok": False, "error": exc.to_wire()}


def _refused(code: str, message: str) -> dict[str, Any]:
    """The channel's own refusal (no handler ran): a ``PeerError`` with its own code."""
    return {"ok": False, "error": {**PeerError(message).to_wire(), "code": code}}


def _reply(frame: bytes) -> dict[str, Any]:
    """A control answer frame: the reply object, or the node's error raised.

    Raises:
        PeerError: malformed; AriaError: the node's error, as the node raised it.
    """
    try:
        reply = json.loads(frame)
    except ValueError:
        raise PeerError("the node sent a malformed control answer") from None
    if isinstance(reply, dict) and (reply.get("ok") or "item" in reply):
        return reply
    error = reply.get("error") if isinstance(reply, dict) else None
    if not isinstance(error, dict):
        raise PeerError("the node refused the request")
    raise from_wire(error, fallback=PeerError)


def _stream_items(decoder: FrameDecoder, data: bytes) -> tuple[list[Any], bool]:
    """The items of a streaming answer in ``data``'s frames, and whether it ended.

    Raises:
        PeerError: the node's error frame; CodecError: a malformed frame.
    """
    items = []
    for frame in decoder.feed(data):
        reply = _reply(frame)
        if "item" in reply:
            items.append(reply["item"])
        elif reply.get("end"):
            return items, True
    return items, False


# The node bounds every operation itself (a tunnel opens within 60 s, a peer's first
# chunk arrives within 300 s) and then answers; the client waits a little longer, so
# it hears the node's own answer instead of timing out first.
_REQUEST_ANSWER_S = 90.0
_STREAM_ITEM_S = 330.0


class NodeClient:
    """Talks to the node that runs on this ARIA home (sync; one socket per call)."""

    def __init__(self, port: int, token: str, peer_id: str, timeout_s: float = 30.0) -> None:
        self.port = port
        self.peer_id = peer_id
        self._token = token
        self._timeout = timeout_s
        self._limit = load_spec().control_frame

    @classmethod
    def located(cls, paths: AriaPaths, timeout_s: float = 30.0) -> NodeClient | None:
        """The client for the node this home's control file names (not asked whether it
        runs: the first request finds out), or None when there is no such file."""
        try:
            info = _ControlFile.model_validate_json(control_file(paths).read_text("utf-8"))
        except (OSError, ValidationError):
            return None
        return cls(info.port, info.token, info.peer_id, timeout_s)

    @classmethod
    def connect(cls, paths: AriaPaths, timeout_s: float = 30.0) -> NodeClient | None:
        """The running node's client, or None when no node answers on this home."""
        client = cls.located(paths, timeout_s)
        if client is None:
            return None
        try:
            client.request("ping")
        except NodeNotRunning:
            return None
        return client

    @classmethod
    def require(cls, paths: AriaPaths, timeout_s: float = 30.0) -> NodeClient:
        """Like ``connect`` but raises when no node runs.

        Raises:
            NodeNotRunning: no node answers for this ARIA home.
        """
        client = cls.connect(paths, timeout_s)
        if client is None:
            raise NodeNotRunning(
                f"no ARIA node is running for {paths.home}; start one with `aria node start`"
            )
        return client

    def request(self, op: str, **args: Any) -> Any:
        """Run one operation on the node and return its result.

        Raises:
            NodeNotRunning: the node cannot be reached or hung up mid-answer.
            PeerError: the node refused or failed the operation (its message).
        """
        body = _frame({"token": self._token, "op": op, "args": args}, self._limit)
        decoder = FrameDecoder(self._limit)
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=self._timeout) as sock:
                sock.settimeout(max(self._timeout, _REQUEST_ANSWER_S))
                sock.sendall(body)
                while True:
                    data = sock.recv(65536)
                    if not data:
                        raise NodeNotRunning("the node closed the control channel mid-answer")
                    frames = decoder.feed(data)
                    if frames:
                        break
        except (OSError, CodecError) as exc:
            raise NodeNotRunning(f"the node's control channel did not answer ({exc})") from None
        return _reply(frames[0]).get("result")

    def stream(self, op: str, **args: Any) -> Iterator[Any]:
        """Run a streaming operation; yield its items as the node sends them.

        Raises:
            NodeNotRunning: the node cannot be reached or hung up mid-stream.
            PeerError: the node refused or failed the operation (its code and message).
        """
        body = _frame({"token": self._token, "op": op, "args": args}, self._limit)
        decoder = FrameDecoder(self._limit)
        try:
            sock = socket.create_connection(("127.0.0.1", self.port), timeout=self._timeout)
        except OSError as exc:
            raise NodeNotRunning(f"the node's control channel did not answer ({exc})") from None
        with sock:
            try:
                sock.settimeout(max(self._timeout, _STREAM_ITEM_S))
                sock.sendall(body)
                while True:
                    data = sock.recv(65536)
                    if not data:
                        raise NodeNotRunning("the node closed the control channel mid-stream")
                    items, ended = _stream_items(decoder, data)
                    yield from items
                    if ended:
                        return
            except (OSError, CodecError) as exc:
                raise NodeNotRunning(f"the node's control channel failed ({exc})") from None

    async def astream(self, op: str, **args: Any) -> AsyncGenerator[Any, None]:
        """:meth:`stream` on the caller's event loop (anyio); closing it hangs up.

        Raises:
            NodeNotRunning: the node cannot be reached, hung up, or sent nothing for
                the node's own per-item bound.
            PeerError: the node refused or failed the operation (its code and message).
        """
        body = _frame({"token": self._token, "op": op, "args": args}, self._limit)
        decoder = FrameDecoder(self._limit)
        try:
            with anyio.fail_after(self._timeout):
                stream = await anyio.connect_tcp("127.0.0.1", self.port)
        except (OSError, TimeoutError) as exc:
            raise NodeNotRunning(f"the node's control channel did not answer ({exc})") from None
        async with stream:
            try:
                await stream.send(body)
                while True:
                    with anyio.fail_after(max(self._timeout, _STREAM_ITEM_S)):
                        data = await stream.receive(65536)
                    items, ended = _stream_items(decoder, data)
                    for item in items:
                        yield item
                    if ended:
                        return
            except anyio.EndOfStream:
                raise NodeNotRunning("the node closed the control channel mid-stream") from None
            except (OSError, CodecError, TimeoutError, anyio.BrokenResourceError) as exc:
                raise NodeNotRunning(f"the node's control channel failed ({exc})") from None

    def status(self) -> NetworkStatus:
        return NetworkStatus.model_validate(self.request("status"))

    def peers(self) -> list[PeerView]:
        return TypeAdapter(list[PeerView]).validate_python(self.request("peers"))

    def ping(self, peer_id: str) -> dict[str, Any]:
        """RTT to ``peer_id`` and the connection kind the ping crossed."""
        return dict(self.request("ping_peer", peer_id=peer_id))

    def find(self, model_id: str) -> list[ModelProvider]:
        return TypeAdapter(list[ModelProvider]).validate_python(
            self.request("find", model_id=model_id)
        )
