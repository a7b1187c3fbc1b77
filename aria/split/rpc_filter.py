"""A ggml-rpc protocol filter between a peer and this node's RPC worker (sans-I/O).

ggml-rpc trusts its client completely: tensor pointers, sizes, graph ops and a cache
flag that writes files. A lender therefore never lets a peer's bytes reach its worker
unparsed. :class:`RpcFilter` reads both directions of one connection (bytes in; bytes
to forward, or a :class:`Refusal`, out) and lets through only what llama.cpp's own
client sends, within what this session was given:

* the first command is ``HELLO``; every command is one of protocol 7.0.0
  (:mod:`aria.split.rpc_wire`), with the exact size the real client uses; the
  transport-upgrade (RDMA) capabilities in both HELLOs are zeroed;
* ``device`` is always 0 (a worker serves one device);
* every tensor lies inside a buffer the worker allocated *on this connection*, whose
  base the client asked for, with ``offset + size`` inside the tensor: the bounds
  ggml aborts on (``deserialize_tensor``, ``ggml_backend_tensor_set/get``);
* the buffers allocated on the connection never total more than the offer;
* the tensor cache is closed to peers: ``SET_TENSOR_HASH`` is answered here with "not
  cached" and never reaches the worker, and a ``SET_TENSOR``'s cache flag is cleared;
* a graph is bounded (nodes, tensors), names only tensors it carries, uses only the
  forward ops llama.cpp emits (never the custom ops whose parameters hold function
  pointers) with valid kernel enums; ``GRAPH_RECOMPUTE`` needs a graph still valid;
* the session ends when idle (no bytes and no answer pending) for ``idle_s``, after
  ``max_session_s``, or beyond ``max_client_bytes``.

A refusal is decided *before* the offending command's first byte is forwarded, so the
worker never sees a request it would abort on; the adapter then closes both sides.
Large ``SET_TENSOR`` payloads and ``GET_TENSOR`` answers stream through once their
headers passed, so weights are never held here whole.

Transitions: OPEN -first command HELLO-> SERVING -any violation/timer-> REFUSED.
"""

from __future__ import annotations

import struct
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from aria.split.rpc_graph import graph_fault
from aria.split.rpc_wire import (
    FIXED_REQUEST_SIZE,
    GRAPH_HEADER,
    HEADER,
    MAX_SRC,
    RESPONSE_SIZE,
    RPC_TENSOR,
    SET_TENSOR_HEADER,
    BufferTable,
    Command,
    GgmlTable,
    load_table,
    tensor_extents,
    tensor_faults,
)

__all__ = ["FilterLimits", "Refusal", "RpcFilter"]

_U32 = struct.Struct("<I")
_U64 = struct.Struct("<Q")
_TENSOR = RPC_TENSOR.itemsize
_NOT_CACHED = _U64.pack(1) + b"\x00"  # SET_TENSOR_HASH answer: result = 0
# Requests whose body starts with the device index (u32).
_DEVICE_FIRST = frozenset(
    {
        Command.ALLOC_BUFFER,
        Command.GET_ALIGNMENT,
        Command.GET_MAX_SIZE,
        Command.GET_DEVICE_MEMORY,
        Command.GET_ALLOC_SIZE,
        Command.GRAPH_RECOMPUTE,
        Command.GRAPH_COMPUTE,
    }
)


@dataclass(frozen=True)
class FilterLimits:
    """What one peer's session may use on this worker."""

    max_alloc_bytes: int
    max_buffers: int = 4096
    max_graph_nodes: int = 32768
    max_graph_tensors: int = 65536
    idle_s: float = 300.0
    max_session_s: float = 6 * 3600.0
    max_client_bytes: int = 64 * 1024**3

    @property
    def max_graph_bytes(self) -> int:
        return GRAPH_HEADER.size + 8 * self.max_graph_nodes + 4 + _TENSOR * self.max_graph_tensors


@dataclass(frozen=True)
class Refusal:
    """Why a session was cut: ``reason`` is a stable code, ``detail`` one sentence."""

    reason: str  # protocol | bounds | allocation | graph | idle | duration | quota | worker
    detail: str


@dataclass
class _Expect:
    """One answer the client waits for, in order: from the worker, or made here."""

    command: Command
    size: int
    arg: int = 0  # ALLOC_BUFFER: the size asked; BUFFER_GET_BASE: the buffer
    local: bytes | None = None


@dataclass
class _Counters:
    client_bytes: int = 0
    worker_bytes: int = 0
    commands: Counter[str] = field(default_factory=Counter)
    cache_flags_cleared: int = 0


class _Refused(Exception):
    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.refusal = Refusal(reason, detail)


class RpcFilter:
    """One peer connection to the worker; feed both directions, forward what it returns."""

    def __init__(self, limits: FilterLimits, table: GgmlTable | None = None) -> None:
        self.limits = limits
        self.table = table or load_table()
        self.refusal: Refusal | None = None
        self.stats = _Counters()
        self.buffers = BufferTable.empty()
        self._live = 0  # bytes in this connection's buffers
        self._reserved = 0  # bytes asked for, not yet answered
        self._graph_ready = False
        self._hello_seen = False
        self._client = bytearray()
        self._worker = bytearray()
        self._to_worker = bytearray()
        self._to_client = bytearray()
        self._payload_left = 0  # SET_TENSOR bytes still to stream to the worker
        self._answer_left = 0  # GET_TENSOR bytes still to stream to the client
        self._expect: deque[_Expect] = deque()
        self._charged: dict[int, int] = {}  # buffer -> bytes counted against the offer
        self._checks: dict[Command, Callable[[bytes], bytes | None]] = {
            Command.HELLO: self._on_hello,
            Command.ALLOC_BUFFER: self._on_alloc_buffer,
            Command.BUFFER_GET_BASE: self._on_buffer,
            Command.BUFFER_CLEAR: self._on_buffer,
            Command.FREE_BUFFER: self._on_free_buffer,
            Command.SET_TENSOR_HASH: self._on_set_tensor_hash,
            Command.MEMSET_TENSOR: self._on_memset_tensor,
            Command.INIT_TENSOR: self._on_init_tensor,
            Command.GET_TENSOR: self._on_get_tensor,
            Command.COPY_TENSOR: self._on_copy_tensor,
            Command.GET_ALLOC_SIZE: self._on_get_alloc_size,
            Command.GRAPH_COMPUTE: self._on_graph_compute,
            Command.GRAPH_RECOMPUTE: self._on_graph_recompute,
        }
        self._started = 0.0
        self._last_activity = 0.0
        self._idle_s = limits.idle_s

    # -- the sans-I/O surface -------------------------------------------------------

    @property
    def allocated_bytes(self) -> int:
        return self._live

    @property
    def deadline(self) -> float | None:
        """When :meth:`handle_timer` must run next (None once refused)."""
        if self.refusal is not None:
            return None
        end = self._started + self.limits.max_session_s
        if self._expect or self._answer_left:
            return end  # the worker owes an answer: computing is not idling
        return min(end, self._last_activity + self._idle_s)

    def start(self, now: float) -> None:
        self._started = self._last_activity = now

    def shorten_idle(self, idle_s: float) -> None:
        """Let the session end sooner when idle (another peer waits for the worker)."""
        self._idle_s = min(self._idle_s, idle_s)

    def receive_client(self, data: bytes, now: float) -> None:
        """Bytes from the peer (its llama.cpp client)."""
        if self.refusal is not None:
            return
        self._last_activity = now
        self.stats.client_bytes += len(data)
        self._client += data
        self._guard(self._parse_client)

    def receive_worker(self, data: bytes, now: float) -> None:
        """Bytes from this node's RPC worker."""
        if self.refusal is not None:
            return
        self._last_activity = now
        self.stats.worker_bytes += len(data)
        self._worker += data
        self._guard(self._parse_worker)

    def handle_timer(self, now: float) -> None:
        if self.refusal is not None:
            return
        if now >= self._started + self.limits.max_session_s:
            self._refuse("duration", f"session reached its {self.limits.max_session_s:.0f} s limit")
        elif self.deadline is not None and now >= self.deadline:
            self._refuse("idle", f"session idle for {self._idle_s:.0f} s")

    def data_for_worker(self) -> bytes:
        data, self._to_worker = bytes(self._to_worker), bytearray()
        return data

    def data_for_client(self) -> bytes:
        data, self._to_client = bytes(self._to_client), bytearray()
        return data

    # -- plumbing -------------------------------------------------------------------

    def _refuse(self, reason: str, detail: str) -> None:
        self.refusal = Refusal(reason, detail)
        self._client.clear()
        self._worker.clear()

    def _guard(self, parse: Callable[[], None]) -> None:
        try:
            parse()
        except _Refused as exc:
            self._refuse(exc.refusal.reason, exc.refusal.detail)
        except (ValueError, KeyError, struct.error) as exc:  # malformed beyond the checks
            self._refuse("protocol", f"malformed message ({exc})")

    def _stream(self, source: bytearray, pos: int, left: int, sink: bytearray) -> tuple[int, int]:
        take = min(left, len(source) - pos)
        sink += source[pos : pos + take]
        return pos + take, left - take

    # -- client -> worker -------------------------------------------------------------

    def _parse_client(self) -> None:
        if self.stats.client_bytes > self.limits.max_client_bytes:
            raise _Refused("quota", f"session sent over {self.limits.max_client_bytes} bytes")
        buf, pos = self._client, 0
        try:
            while True:
                if self._payload_left:
                    pos, self._payload_left = self._stream(
                        buf, pos, self._payload_left, self._to_worker
                    )
                    if self._payload_left:
                        return
                if len(buf) - pos < HEADER.size:
                    return
                raw, size = HEADER.unpack_from(buf, pos)
                command = self._command(raw, size)
                if command is Command.SET_TENSOR:
                    if len(buf) - pos < HEADER.size + SET_TENSOR_HEADER:
                        return
                    head = bytes(buf[pos + HEADER.size : pos + HEADER.size + SET_TENSOR_HEADER])
                    self._set_tensor(head, size)
                    self._consumed(command)
                    pos += HEADER.size + SET_TENSOR_HEADER
                    continue
                if len(buf) - pos < HEADER.size + size:
                    return
                body = bytes(buf[pos + HEADER.size : pos + HEADER.size + size])
                pos += HEADER.size + size
                self._request(command, body)
                self._consumed(command)
        finally:
            del buf[:pos]
            self._answer_local()

    def _command(self, raw: int, size: int) -> Command:
        """The command a header announces, if this session may send it (no state change)."""
        try:
            command = Command(raw)
        except ValueError:
            raise _Refused("protocol", f"unknown command {raw}") from None
        if (command is Command.HELLO) == self._hello_seen:
            raise _Refused("protocol", "HELLO must come first, and only once")
        fixed = FIXED_REQUEST_SIZE.get(command)
        if fixed is not None and size != fixed:
            raise _Refused("protocol", f"{command.name} of {size} bytes (expected {fixed})")
        if command is Command.SET_TENSOR and size < SET_TENSOR_HEADER:
            raise _Refused("protocol", "SET_TENSOR shorter than its header")
        if command is Command.GRAPH_COMPUTE and size > self.limits.max_graph_bytes:
            raise _Refused("graph", f"graph of {size} bytes exceeds this session's limit")
        return command

    def _consumed(self, command: Command) -> None:
        self._hello_seen = True
        self.stats.commands[command.name] += 1

    def _request(self, command: Command, body: bytes) -> None:
        """Check one whole request; forward it (as rewritten) or answer it here."""
        if command in _DEVICE_FIRST and _U32.unpack_from(body)[0] != 0:
            raise _Refused("protocol", "this worker serves only device 0")
        check = self._checks.get(command)
        forwarded = body if check is None else check(body)
        if forwarded is None:
            return
        self._to_worker += HEADER.pack(command, len(forwarded)) + forwarded
        if command in RESPONSE_SIZE:
            arg = 0
            if command is Command.ALLOC_BUFFER:
                arg = _U64.unpack_from(body, 4)[0]
            elif command is Command.BUFFER_GET_BASE:
                arg = _U64.unpack_from(body)[0]
            self._expect.append(_Expect(command, RESPONSE_SIZE[command], int(arg)))

    def _on_hello(self, body: bytes) -> bytes:
        return bytes(len(body))  # no transport upgrade offer reaches the worker

    def _on_alloc_buffer(self, body: bytes) -> bytes:
        size = _U64.unpack_from(body, 4)[0]
        if size == 0:
            raise _Refused("allocation", "empty buffer requested")
        if len(self.buffers.sizes) + self._pending(Command.ALLOC_BUFFER) >= self.limits.max_buffers:
            raise _Refused("allocation", "too many buffers")
        if self._live + self._reserved + size > self.limits.max_alloc_bytes:
            raise _Refused(
                "allocation",
                f"allocating {size} bytes would exceed this session's offer of "
                f"{self.limits.max_alloc_bytes} bytes",
            )
        self._reserved += size
        return body

    def _pending(self, command: Command) -> int:
        return sum(1 for e in self._expect if e.command is command)

    def _buffer_arg(self, body: bytes) -> int:
        pointer = int(_U64.unpack_from(body)[0])
        if pointer not in self.buffers.sizes:
            raise _Refused("bounds", "buffer not allocated by this session")
        return pointer

    def _on_buffer(self, body: bytes) -> bytes:
        self._buffer_arg(body)
        return body

    def _on_free_buffer(self, body: bytes) -> bytes:
        pointer = self._buffer_arg(body)
        self._live -= self._charged.pop(pointer)
        del self.buffers.sizes[pointer], self.buffers.bases[pointer]
        self._graph_ready = False  # the worker drops its stored graphs too
        return body

    def _tensors(self, body: bytes, count: int, *, offset: int = 0) -> np.ndarray:
        return np.frombuffer(body, dtype=RPC_TENSOR, count=count, offset=offset)

    def _extent(self, tensor: np.ndarray, *, unallocated_ok: bool = False) -> int:
        fault = tensor_faults(tensor, self.buffers, self.table, unallocated_ok=unallocated_ok)
        if fault is not None:
            raise _Refused("bounds", fault)
        extents = tensor_extents(tensor, self.table)
        assert not isinstance(extents, str)
        return int(extents[0])

    def _window(self, extent: int, offset: int, size: int, what: str) -> None:
        if offset > extent or size > extent - offset:
            raise _Refused("bounds", f"{what} of {size} bytes at {offset} outside its tensor")

    def _set_tensor(self, head: bytes, size: int) -> None:
        extent = self._extent(self._tensors(head, 1))
        offset = _U64.unpack_from(head, _TENSOR + 1)[0]
        payload = size - SET_TENSOR_HEADER
        self._window(extent, offset, payload, "SET_TENSOR")
        if head[_TENSOR]:
            self.stats.cache_flags_cleared += 1
        head = head[:_TENSOR] + b"\x00" + head[_TENSOR + 1 :]
        self._to_worker += HEADER.pack(Command.SET_TENSOR, size) + head
        self._payload_left = payload

    def _on_set_tensor_hash(self, body: bytes) -> None:
        self._extent(self._tensors(body, 1))
        self._expect.append(_Expect(Command.SET_TENSOR_HASH, 1, local=_NOT_CACHED))

    def _on_memset_tensor(self, body: bytes) -> bytes:
        extent = self._extent(self._tensors(body, 1))
        offset, size = struct.unpack_from("<QQ", body, _TENSOR)
        self._window(extent, offset, size, "MEMSET_TENSOR")
        return body

    def _on_init_tensor(self, body: bytes) -> bytes:
        self._extent(self._tensors(body, 1))
        return body

    def _on_get_tensor(self, body: bytes) -> bytes:
        extent = self._extent(self._tensors(body, 1))
        offset, size = struct.unpack_from("<QQ", body, _TENSOR)
        self._window(extent, offset, size, "GET_TENSOR")
        self._expect.append(_Expect(Command.GET_TENSOR, int(size)))
        return body

    def _on_copy_tensor(self, body: bytes) -> bytes:
        src = self._extent(self._tensors(body, 1))
        dst = self._extent(self._tensors(body, 1, offset=_TENSOR))
        if src > dst:
            raise _Refused("bounds", "COPY_TENSOR source larger than its destination")
        return body

    def _on_get_alloc_size(self, body: bytes) -> bytes:
        tensors = self._tensors(body, 1 + MAX_SRC, offset=4)
        self._extent(tensors[:1], unallocated_ok=True)
        sources = tensors[1:][tensors[1:]["id"] != 0]
        fault = tensor_faults(sources, self.buffers, self.table, unallocated_ok=True)
        if fault is not None:
            raise _Refused("bounds", fault)
        return body

    def _on_graph_recompute(self, body: bytes) -> bytes:
        if not self._graph_ready:
            raise _Refused("graph", "GRAPH_RECOMPUTE without a valid graph")
        return body

    def _on_graph_compute(self, body: bytes) -> bytes:
        fault = graph_fault(body, self.buffers, self.table, self.limits)
        if fault is not None:
            raise _Refused("graph", fault)
        self._graph_ready = True
        return body

    # -- worker -> client -------------------------------------------------------------

    def _answer_local(self) -> None:
        while self._expect and self._expect[0].local is not None:
            self._to_client += self._expect.popleft().local or b""

    def _parse_worker(self) -> None:
        buf, pos = self._worker, 0
        try:
            while True:
                if self._answer_left:
                    pos, self._answer_left = self._stream(
                        buf, pos, self._answer_left, self._to_client
                    )
                    if self._answer_left:
                        return
                self._answer_local()
                if len(buf) == pos:
                    return
                if not self._expect:
                    raise _Refused("worker", "the worker sent bytes nobody asked for")
                if len(buf) - pos < _U64.size:
                    return
                expect = self._expect[0]
                (size,) = _U64.unpack_from(buf, pos)
                if size != expect.size:
                    raise _Refused("worker", f"{expect.command.name} answer of {size} bytes")
                if expect.command is Command.GET_TENSOR:
                    self._expect.popleft()
                    self._to_client += buf[pos : pos + _U64.size]
                    pos, self._answer_left = pos + _U64.size, size
                    continue
                if len(buf) - pos < _U64.size + size:
                    return
                body = bytes(buf[pos + _U64.size : pos + _U64.size + size])
                pos += _U64.size + size
                self._expect.popleft()
                self._to_client += _U64.pack(size) + self._answer(expect, body)
        finally:
            del buf[:pos]

    def _answer(self, expect: _Expect, body: bytes) -> bytes:
        if expect.command is Command.HELLO:
            return body[:4] + bytes(len(body) - 4)  # the worker's upgrade offer is dropped too
        if expect.command is Command.ALLOC_BUFFER:
            pointer, size = struct.unpack("<QQ", body)
            self._reserved -= expect.arg
            if pointer:
                self.buffers.sizes[int(pointer)] = int(size)  # the real extent, for bounds
                self.buffers.bases[int(pointer)] = None
                self._charged[int(pointer)] = max(int(size), expect.arg)
                self._live += self._charged[int(pointer)]
        elif expect.command is Command.BUFFER_GET_BASE and expect.arg in self.buffers.sizes:
            self.buffers.bases[expect.arg] = int(_U64.unpack(body)[0])
        return body
