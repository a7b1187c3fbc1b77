"""The ggml-rpc wire format (protocol 7.0.0), as data a filter can check (pure, numpy).

What llama.cpp's RPC client sends a server, from ``ggml/src/ggml-rpc/ggml-rpc.cpp`` of
the llama.cpp that llama-cpp-python 0.3.36 vendors:

    request   | command (1 byte) | size (u64 LE) | body (size bytes) |
    response  | size (u64 LE) | body (size bytes) |        (only some commands answer)

The first request is always ``HELLO``. A tensor travels as a packed 296-byte
``rpc_tensor`` (:data:`RPC_TENSOR`) whose ``buffer`` and ``data`` fields are raw
pointers *in the server's address space*: the server trusts them once the buffer is
one it allocated for this connection. Everything a peer can make the worker touch is
therefore decided by these fields, which :func:`tensor_faults` checks against the
buffers the filter saw the worker allocate.

The type and op tables come from ``data/ggml_rpc.toml`` (checked against the
installed libggml by ``tests/rpc/test_rpc_wire.py``).
"""

from __future__ import annotations

import struct
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from enum import IntEnum
from functools import cache
from importlib import resources

import numpy as np
import numpy.typing as npt

__all__ = [
    "FIXED_REQUEST_SIZE",
    "GRAPH_HEADER",
    "HEADER",
    "MAX_SRC",
    "RESPONSE_SIZE",
    "RPC_TENSOR",
    "SET_TENSOR_HEADER",
    "BufferTable",
    "Command",
    "GgmlTable",
    "load_table",
    "one_tensor",
    "tensor_extents",
    "tensor_faults",
]


class Command(IntEnum):
    """``enum rpc_cmd``: every command llama.cpp's client sends (``RPC_CMD_NONE`` is local)."""

    ALLOC_BUFFER = 0
    GET_ALIGNMENT = 1
    GET_MAX_SIZE = 2
    BUFFER_GET_BASE = 3
    FREE_BUFFER = 4
    BUFFER_CLEAR = 5
    SET_TENSOR = 6
    SET_TENSOR_HASH = 7
    GET_TENSOR = 8
    COPY_TENSOR = 9
    GRAPH_COMPUTE = 10
    GET_DEVICE_MEMORY = 11
    INIT_TENSOR = 12
    GET_ALLOC_SIZE = 13
    HELLO = 14
    DEVICE_COUNT = 15
    GRAPH_RECOMPUTE = 16
    MEMSET_TENSOR = 17


MAX_DIMS = 4
MAX_SRC = 10
_OP_PARAMS = 16
_NAME = 64

RPC_TENSOR = np.dtype(
    [
        ("id", "<u8"),
        ("type", "<u4"),
        ("buffer", "<u8"),
        ("ne", "<u4", (MAX_DIMS,)),
        ("nb", "<u4", (MAX_DIMS,)),
        ("op", "<u4"),
        ("op_params", "<i4", (_OP_PARAMS,)),
        ("flags", "<i4"),
        ("src", "<u8", (MAX_SRC,)),
        ("view_src", "<u8"),
        ("view_offs", "<u8"),
        ("data", "<u8"),
        ("name", "S64"),
        ("use_count", "<i4"),
    ]
)
assert RPC_TENSOR.itemsize == 296  # static_assert in ggml-rpc.cpp: packed, multiple of 8

HEADER = struct.Struct("<BQ")  # command, body size
SIZE = struct.Struct("<Q")
# SET_TENSOR body: | rpc_tensor | cache_flag (u8) | offset (u64) | data |
SET_TENSOR_HEADER = RPC_TENSOR.itemsize + 1 + 8
# GRAPH_COMPUTE body: | device u32 | n_nodes u32 | nodes u64[n] | n_tensors u32 | tensors |
GRAPH_HEADER = struct.Struct("<II")

_T = RPC_TENSOR.itemsize
FIXED_REQUEST_SIZE: dict[Command, int] = {
    Command.HELLO: 24,
    Command.DEVICE_COUNT: 0,
    Command.ALLOC_BUFFER: 12,
    Command.GET_ALLOC_SIZE: 4 + _T * (1 + MAX_SRC),
    Command.GET_ALIGNMENT: 4,
    Command.GET_MAX_SIZE: 4,
    Command.BUFFER_GET_BASE: 8,
    Command.FREE_BUFFER: 8,
    Command.BUFFER_CLEAR: 9,
    Command.MEMSET_TENSOR: _T + 8 + 8 + 1,
    Command.SET_TENSOR_HASH: _T + 8 + 8,
    Command.INIT_TENSOR: _T,
    Command.GET_TENSOR: _T + 8 + 8,
    Command.COPY_TENSOR: 2 * _T,
    Command.GET_DEVICE_MEMORY: 4,
    Command.GRAPH_RECOMPUTE: 4,
}
# Fixed-size answers (GET_TENSOR answers with the size it asked for; others say nothing).
RESPONSE_SIZE: dict[Command, int] = {
    Command.HELLO: 4 + 24,
    Command.DEVICE_COUNT: 4,
    Command.ALLOC_BUFFER: 16,
    Command.GET_ALLOC_SIZE: 8,
    Command.GET_ALIGNMENT: 8,
    Command.GET_MAX_SIZE: 8,
    Command.BUFFER_GET_BASE: 8,
    Command.SET_TENSOR_HASH: 1,
    Command.COPY_TENSOR: 1,
    Command.GET_DEVICE_MEMORY: 16,
}

# No honest tensor comes near this; bounding every term keeps the u64 sums exact.
_MAX_TERM = 1 << 60


@dataclass(frozen=True)
class GgmlTable:
    """Per-type block sizes and byte sizes, and which graph ops a peer may request."""

    version: tuple[int, int, int]
    caps_bytes: int
    block: npt.NDArray[np.uint64]  # by type id; 0 = no such type
    type_size: npt.NDArray[np.uint64]
    type_ids: Mapping[str, int]
    op_ids: Mapping[str, int]  # the allowed ops
    op_allowed: npt.NDArray[np.bool_]  # by op id
    op_enum_limit: npt.NDArray[np.int64]  # by op id: op_params[0] must be below; -1 = any
    weight_types: frozenset[int]
    row_types: frozenset[int]
    rope_modes: frozenset[int]

    def sizes(self, kind: int) -> tuple[int, int] | None:
        """(block, bytes per block) of a type id, or None for no such type."""
        if kind >= len(self.block) or not self.block[kind]:
            return None
        return int(self.block[kind]), int(self.type_size[kind])

    @property
    def n_types(self) -> int:
        return len(self.block)

    @property
    def n_ops(self) -> int:
        return len(self.op_allowed)


@cache
def load_table() -> GgmlTable:
    """The packaged table of the ggml this ARIA's llama.cpp speaks."""
    text = resources.files("aria.rpc").joinpath("data/ggml_rpc.toml").read_text("utf-8")
    data = tomllib.loads(text)
    n_types = max(int(k) for k in data["types"]) + 1
    block = np.zeros(n_types, dtype=np.uint64)
    size = np.zeros(n_types, dtype=np.uint64)
    type_ids = {}
    for key, (name, blck, nbytes) in data["types"].items():
        block[int(key)], size[int(key)] = blck, nbytes
        type_ids[name] = int(key)
    n_ops = int(data["ops"]["count"])
    op_ids = {name: int(op) for name, op in data["ops"]["allowed"].items()}
    allowed = np.zeros(n_ops, dtype=np.bool_)
    allowed[list(op_ids.values())] = True
    limits = np.full(n_ops, -1, dtype=np.int64)
    for name, count in data["op_param_enums"].items():
        limits[op_ids[name]] = count
    proto, kernels = data["protocol"], data["kernels"]
    return GgmlTable(
        version=(proto["major"], proto["minor"], proto["patch"]),
        caps_bytes=int(proto["conn_caps_bytes"]),
        block=block,
        type_size=size,
        type_ids=type_ids,
        op_ids=op_ids,
        op_allowed=allowed,
        op_enum_limit=limits,
        weight_types=frozenset(type_ids[name] for name in kernels["weights"]),
        row_types=frozenset(type_ids[name] for name in kernels["rows"]),
        rope_modes=frozenset(int(mode) for mode in kernels["rope_modes"]),
    )


@dataclass
class BufferTable:
    """The buffers the worker allocated on this connection: pointer -> (base, size).

    ``base`` stays None until the worker answered ``BUFFER_GET_BASE`` for it; a tensor
    may only point into a buffer whose base the filter has seen.
    """

    sizes: dict[int, int]
    bases: dict[int, int | None]

    @classmethod
    def empty(cls) -> BufferTable:
        return cls({}, {})

    def arrays(self) -> tuple[npt.NDArray[np.uint64], ...]:
        """Sorted pointers with their bases and sizes (buffers without a base left out)."""
        known = sorted((p, b, self.sizes[p]) for p, b in self.bases.items() if b is not None)
        columns = list(zip(*known, strict=True)) if known else [(), (), ()]
        return tuple(np.array(c, dtype=np.uint64) for c in columns)


def tensor_extents(tensors: npt.NDArray[np.void], table: GgmlTable) -> npt.NDArray[np.uint64] | str:
    """``ggml_nbytes`` of each ``rpc_tensor`` record, or why the records are malformed.

    Each must have a known type whose block divides ``ne[0]`` (else ggml asserts), and
    no stride may make it overlap itself: its extent is at least its dense size, so a
    tensor cannot claim more elements (work) than its bytes.
    """
    types = tensors["type"].astype(np.int64)
    if (types >= table.n_types).any():
        return "unknown tensor type"
    block = table.block[types]
    if (block == 0).any():
        return "removed tensor type"
    type_size = table.type_size[types]
    ne = tensors["ne"].astype(np.uint64)
    nb = tensors["nb"].astype(np.uint64)
    if (ne[:, 0] % block != 0).any():
        return "row length not a multiple of the type's block"
    first = np.where(block == 1, type_size, ne[:, 0] * nb[:, 0] // block)
    rest = (np.maximum(ne, 1) - np.uint64(1)) * nb
    rest[:, 0] = np.where(block == 1, rest[:, 0], np.uint64(0))
    if (first > _MAX_TERM).any() or (rest > _MAX_TERM).any():
        return "tensor extent out of range"
    if (ne.astype(np.float64).prod(axis=1) > _MAX_TERM).any():
        return "tensor element count out of range"
    empty = (ne == 0).any(axis=1)
    nbytes = np.where(empty, np.uint64(0), first + rest.sum(axis=1, dtype=np.uint64))
    dense = ne.prod(axis=1, dtype=np.uint64) // block * type_size
    if (nbytes < dense).any():
        return "tensor strides overlap (extent below its dense size)"
    return nbytes


_HEAD = struct.Struct("<QIQ4I4I")  # id, type, buffer, ne[4], nb[4]
_DATA_AT = 220  # offset of rpc_tensor.data
assert RPC_TENSOR.fields is not None and RPC_TENSOR.fields["data"][1] == _DATA_AT


def one_tensor(raw: bytes, at: int, buffers: BufferTable, table: GgmlTable) -> int | str:
    """:func:`tensor_faults` and :func:`tensor_extents` for one record, in plain integers.

    The filter checks a tensor in every small request of every generated token; this
    path costs a few microseconds where the vectorised one costs tens. Returns the
    tensor's extent (``ggml_nbytes``), or why it must not reach the worker.
    """
    _id, kind, buffer, *dims = _HEAD.unpack_from(raw, at)
    ne, nb = dims[:4], dims[4:]
    sizes = table.sizes(kind)
    if sizes is None:
        return "unknown tensor type" if kind >= table.n_types else "removed tensor type"
    block, size = sizes
    if ne[0] % block:
        return "row length not a multiple of the type's block"
    # Same arithmetic, same limits as tensor_extents (a test holds them to it).
    first = size if block == 1 else ne[0] * nb[0] // block
    rest = [(max(n, 1) - 1) * b for n, b in zip(ne, nb, strict=True)]
    if block != 1:
        rest[0] = 0
    if first > _MAX_TERM or max(rest) > _MAX_TERM:
        return "tensor extent out of range"
    elements = ne[0] * ne[1] * ne[2] * ne[3]
    if elements > _MAX_TERM:
        return "tensor element count out of range"
    extent = 0 if 0 in ne else first + sum(rest)
    if extent < elements // block * size:
        return "tensor strides overlap (extent below its dense size)"
    (data,) = SIZE.unpack_from(raw, at + _DATA_AT)
    if buffer == 0:
        return "tensor without a buffer of this session"
    base = buffers.bases.get(buffer)
    if base is None:
        return "tensor in a buffer this session did not allocate (or whose base it never read)"
    if data < base or data + extent > base + buffers.sizes[buffer]:
        return "tensor outside its buffer"
    return extent


def tensor_faults(
    tensors: npt.NDArray[np.void],
    buffers: BufferTable,
    table: GgmlTable,
    *,
    unallocated_ok: bool = False,
) -> str | None:
    """Why these ``rpc_tensor`` records must not reach the worker, or None.

    Besides :func:`tensor_extents`, each ``[data, data + nbytes)`` must lie in a buffer
    of this connection with a known base: the bounds ggml-rpc itself asserts on.
    With ``unallocated_ok`` (``GET_ALLOC_SIZE``) a tensor may also have no buffer and no
    data yet.
    """
    if tensors.size == 0:
        return None
    nbytes = tensor_extents(tensors, table)
    if isinstance(nbytes, str):
        return nbytes
    return _bounds_fault(tensors, nbytes, buffers, unallocated_ok)


def _bounds_fault(
    tensors: npt.NDArray[np.void],
    nbytes: npt.NDArray[np.uint64],
    buffers: BufferTable,
    unallocated_ok: bool,
) -> str | None:
    buffer = tensors["buffer"]
    data = tensors["data"]
    loose = buffer == 0
    if loose.any():
        if not unallocated_ok:
            return "tensor without a buffer of this session"
        if (data[loose] != 0).any():
            return "tensor data without a buffer"
    placed = ~loose
    if not placed.any():
        return None
    pointers, bases, sizes = buffers.arrays()
    if pointers.size == 0:
        return "tensor in a buffer this session did not allocate"
    index = np.minimum(np.searchsorted(pointers, buffer[placed]), pointers.size - 1)
    if (pointers[index] != buffer[placed]).any():
        return "tensor in a buffer this session did not allocate (or whose base it never read)"
    start, end = bases[index], bases[index] + sizes[index]
    lo, extent = data[placed], nbytes[placed]
    if (lo < start).any() or (lo > end).any() or (extent > end - lo).any():
        return "tensor outside its buffer"
    return None
