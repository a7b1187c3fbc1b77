"""What one ggml-rpc session has and may do: its buffers, its offer, its graph (pure).

:class:`Ledger` is the semantic half of :class:`~aria.rpc.filter.RpcFilter` (which
frames bytes, streams payloads and keeps the answers in order): it checks each whole
request against the session — buffers the worker allocated on this connection, bytes
counted against the offer, tensors inside them (:func:`~aria.rpc.wire.one_tensor`),
graphs (:func:`~aria.rpc.graph.graph_fault`) — and learns from the worker's
answers (allocations, buffer bases). A violation raises :class:`Refused`.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from aria.rpc.graph import graph_fault
from aria.rpc.wire import (
    GRAPH_HEADER,
    MAX_SRC,
    RPC_TENSOR,
    SET_TENSOR_HEADER,
    BufferTable,
    Command,
    GgmlTable,
    one_tensor,
    tensor_faults,
)

__all__ = ["FilterLimits", "Ledger", "Refusal", "Refused"]

_U32 = struct.Struct("<I")
_U64 = struct.Struct("<Q")
_TENSOR = RPC_TENSOR.itemsize
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


class Refused(Exception):
    """A request (or answer) the session must end on."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.refusal = Refusal(reason, detail)


class Ledger:
    """One connection's state as the worker sees it, and the checks that depend on it."""

    def __init__(self, limits: FilterLimits, table: GgmlTable) -> None:
        self.limits = limits
        self.table = table
        self.buffers = BufferTable.empty()
        self.live = 0  # bytes in this connection's buffers
        self.cache_flags_cleared = 0
        self._reserved = 0  # bytes asked for, not yet answered
        self._pending_allocs = 0
        self._charged: dict[int, int] = {}  # buffer -> bytes counted against the offer
        self._graph_ready = False
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

    def check(self, command: Command, body: bytes) -> bytes | None:
        """The body to forward (possibly rewritten), or None when answered without the
        worker (``SET_TENSOR_HASH``: "not cached").

        Raises:
            Refused: the request breaks the session's rules.
        """
        if command in _DEVICE_FIRST and _U32.unpack_from(body)[0] != 0:
            raise Refused("protocol", "this worker serves only device 0")
        check = self._checks.get(command)
        return body if check is None else check(body)

    def set_tensor(self, head: bytes, size: int) -> tuple[bytes, int]:
        """A ``SET_TENSOR`` header (its tensor, cache flag, offset) announcing ``size``
        bytes of body: the header to forward (cache flag cleared) and the payload length.

        Raises:
            Refused: the write would leave its tensor or the session's buffers.
        """
        extent = self._extent(head)
        offset = _U64.unpack_from(head, _TENSOR + 1)[0]
        payload = size - SET_TENSOR_HEADER
        self._window(extent, offset, payload, "SET_TENSOR")
        if head[_TENSOR]:
            self.cache_flags_cleared += 1
        return head[:_TENSOR] + b"\x00" + head[_TENSOR + 1 :], payload

    def answered(self, command: Command, arg: int, body: bytes) -> bytes:
        """Learn from the worker's answer to ``command``; the answer to pass on."""
        if command is Command.HELLO:
            return body[:4] + bytes(len(body) - 4)  # the worker's upgrade offer is dropped too
        if command is Command.ALLOC_BUFFER:
            pointer, size = struct.unpack("<QQ", body)
            self._reserved -= arg
            self._pending_allocs -= 1
            if pointer:
                self.buffers.sizes[int(pointer)] = int(size)  # the real extent, for bounds
                self.buffers.bases[int(pointer)] = None
                self._charged[int(pointer)] = max(int(size), arg)
                self.live += self._charged[int(pointer)]
        elif command is Command.BUFFER_GET_BASE and arg in self.buffers.sizes:
            self.buffers.bases[arg] = int(_U64.unpack(body)[0])
        return body

    def _on_hello(self, body: bytes) -> bytes:
        return bytes(len(body))  # no transport upgrade offer reaches the worker

    def _on_alloc_buffer(self, body: bytes) -> bytes:
        size = _U64.unpack_from(body, 4)[0]
        if size == 0:
            raise Refused("allocation", "empty buffer requested")
        if len(self.buffers.sizes) + self._pending_allocs >= self.limits.max_buffers:
            raise Refused("allocation", "too many buffers")
        if self.live + self._reserved + size > self.limits.max_alloc_bytes:
            raise Refused(
                "allocation",
                f"allocating {size} bytes would exceed this session's offer of "
                f"{self.limits.max_alloc_bytes} bytes",
            )
        self._reserved += size
        self._pending_allocs += 1
        return body

    def _buffer_arg(self, body: bytes) -> int:
        pointer = int(_U64.unpack_from(body)[0])
        if pointer not in self.buffers.sizes:
            raise Refused("bounds", "buffer not allocated by this session")
        return pointer

    def _on_buffer(self, body: bytes) -> bytes:
        self._buffer_arg(body)
        return body

    def _on_free_buffer(self, body: bytes) -> bytes:
        pointer = self._buffer_arg(body)
        self.live -= self._charged.pop(pointer)
        del self.buffers.sizes[pointer], self.buffers.bases[pointer]
        self._graph_ready = False  # the worker drops its stored graphs too
        return body

    def _extent(self, body: bytes, at: int = 0) -> int:
        """The extent of the tensor record at ``at``, which must lie in a session buffer."""
        extent = one_tensor(body, at, self.buffers, self.table)
        if isinstance(extent, str):
            raise Refused("bounds", extent)
        return extent

    def _window(self, extent: int, offset: int, size: int, what: str) -> None:
        if offset > extent or size > extent - offset:
            raise Refused("bounds", f"{what} of {size} bytes at {offset} outside its tensor")

    def _on_set_tensor_hash(self, body: bytes) -> None:
        self._extent(body)  # a well-formed request, answered "not cached" by the filter

    def _on_memset_tensor(self, body: bytes) -> bytes:
        extent = self._extent(body)
        offset, size = struct.unpack_from("<QQ", body, _TENSOR)
        self._window(extent, offset, size, "MEMSET_TENSOR")
        return body

    def _on_init_tensor(self, body: bytes) -> bytes:
        self._extent(body)
        return body

    def _on_get_tensor(self, body: bytes) -> bytes:
        extent = self._extent(body)
        offset, size = struct.unpack_from("<QQ", body, _TENSOR)
        self._window(extent, offset, size, "GET_TENSOR")
        return body

    def _on_copy_tensor(self, body: bytes) -> bytes:
        src = self._extent(body)
        dst = self._extent(body, _TENSOR)
        if src > dst:
            raise Refused("bounds", "COPY_TENSOR source larger than its destination")
        return body

    def _on_get_alloc_size(self, body: bytes) -> bytes:
        tensors = np.frombuffer(body, dtype=RPC_TENSOR, count=1 + MAX_SRC, offset=4)
        wanted = np.concatenate([tensors[:1], tensors[1:][tensors[1:]["id"] != 0]])
        fault = tensor_faults(wanted, self.buffers, self.table, unallocated_ok=True)
        if fault is not None:
            raise Refused("bounds", fault)
        return body

    def _on_graph_recompute(self, body: bytes) -> bytes:
        if not self._graph_ready:
            raise Refused("graph", "GRAPH_RECOMPUTE without a valid graph")
        return body

    def _on_graph_compute(self, body: bytes) -> bytes:
        limits = self.limits
        fault = graph_fault(
            body,
            self.buffers,
            self.table,
            max_nodes=limits.max_graph_nodes,
            max_tensors=limits.max_graph_tensors,
        )
        if fault is not None:
            raise Refused("graph", fault)
        self._graph_ready = True
        return body
