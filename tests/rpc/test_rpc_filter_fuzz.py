"""Hypothesis against the ggml-rpc filter: any bytes, any chunking, any mutation.

An independent oracle (plain Python integers, written from ggml's ``ggml_nbytes`` and
ggml-rpc's bounds checks, not from the filter's numpy code) re-reads everything the
filter forwarded: no forwarded tensor may leave the session's buffer, no write may
leave its tensor, no cache flag and no custom op may pass.
"""

from __future__ import annotations

import struct
from typing import Any

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aria.rpc.wire import (
    RPC_TENSOR,
    Command,
    load_table,
    one_tensor,
    tensor_extents,
    tensor_faults,
)
from tests.rpc import rpcwire as w
from tests.rpc.test_rpc_filter import BASE, POINTER, SIZE, Session, placed

TABLE = load_table()
FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _nbytes(record: np.void) -> int:
    """ggml_nbytes, in Python integers (ggml.c)."""
    kind = int(record["type"])
    block, size = int(TABLE.block[kind]), int(TABLE.type_size[kind])
    ne = [int(x) for x in record["ne"]]
    nb = [int(x) for x in record["nb"]]
    if any(n <= 0 for n in ne):
        return 0
    if block == 1:
        return size + sum((ne[i] - 1) * nb[i] for i in range(4))
    return ne[0] * nb[0] // block + sum((ne[i] - 1) * nb[i] for i in range(1, 4))


def _inside(record: np.void) -> int:
    """The tensor's extent, asserting it lies inside the session's one buffer."""
    kind = int(record["type"])
    assert kind < TABLE.n_types and TABLE.block[kind] > 0
    assert int(record["ne"][0]) % int(TABLE.block[kind]) == 0
    assert int(record["buffer"]) == POINTER
    extent = _nbytes(record)
    data = int(record["data"])
    assert data >= BASE and data + extent <= BASE + SIZE
    return extent


def _oracle(forwarded: bytes) -> None:
    """Re-read a forwarded stream that follows ``Session().open().buffer()``."""
    pos = 0
    while pos < len(forwarded):
        command, size = struct.unpack_from("<BQ", forwarded, pos)
        body = forwarded[pos + 9 : pos + 9 + size]
        pos += 9 + size
        if command in (Command.SET_TENSOR, Command.GET_TENSOR):
            record = np.frombuffer(body, RPC_TENSOR, count=1)[0]
            extent = _inside(record)
            if command == Command.SET_TENSOR:
                assert body[RPC_TENSOR.itemsize] == 0  # no cache flag reaches the worker
                (offset,) = struct.unpack_from("<Q", body, RPC_TENSOR.itemsize + 1)
                length = size - RPC_TENSOR.itemsize - 9
            else:
                offset, length = struct.unpack_from("<QQ", body, RPC_TENSOR.itemsize)
            assert offset + length <= extent
        elif command == Command.GRAPH_COMPUTE:
            (n_nodes,) = struct.unpack_from("<I", body, 4)
            count_at = 8 + 8 * n_nodes
            (n_tensors,) = struct.unpack_from("<I", body, count_at)
            records = np.frombuffer(body, RPC_TENSOR, count=n_tensors, offset=count_at + 4)
            for record in records:
                _inside(record)
                op = int(record["op"])
                assert op < TABLE.n_ops and op not in (92, 93, 94, 95) and TABLE.op_allowed[op]
        else:
            assert command in (Command.GRAPH_RECOMPUTE, Command.GET_ALIGNMENT)


def _honest_script() -> list[bytes]:
    a, b = placed(id=1, ne=(8, 2, 1, 1)), placed(id=2, ne=(8, 2, 1, 1), data=BASE + 64)
    add = placed(id=3, ne=(8, 2, 1, 1), data=BASE + 128, op=2, src=(1, 2))
    return [
        w.set_tensor(a, bytes(64)),
        w.set_tensor(b, bytes(range(64))),
        w.graph([3], [a, b, add]),
        w.recompute(),
        w.request(Command.GET_ALIGNMENT, struct.pack("<I", 0)),
    ]


def _run(session: Session, data: bytes, cuts: list[int]) -> bytes:
    out = b""
    start = 0
    for cut in [*sorted(c % (len(data) + 1) for c in cuts), len(data)]:
        out += session.client(data[start:cut])
        start = max(start, cut)
    return out


@FUZZ
@given(st.binary(max_size=4096), st.lists(st.integers(0, 4096), max_size=8))
def test_any_bytes_are_forwarded_safely_or_refused(data: bytes, cuts: list[int]) -> None:
    session = Session().open().buffer()
    _oracle(_run(session, data, cuts))
    if session.refused is None:
        assert session.filter.stats.client_bytes > 0 or not data


@FUZZ
@given(st.lists(st.integers(0, 2000), max_size=12))
def test_an_honest_session_is_the_same_however_it_is_chunked(cuts: list[int]) -> None:
    data = b"".join(_honest_script())
    session = Session().open().buffer()
    assert _run(session, data, cuts) == data
    assert session.refused is None


_FIELDS: dict[str, st.SearchStrategy[Any]] = {
    "type": st.integers(0, 2**32 - 1) | st.sampled_from([0, 1, 4, 8, 26, 42, 43]),
    "ne": st.lists(st.integers(0, 2**32 - 1) | st.integers(0, 64), min_size=4, max_size=4),
    "nb": st.lists(st.integers(0, 2**32 - 1) | st.integers(0, 512), min_size=4, max_size=4),
    "buffer": st.sampled_from([0, POINTER, POINTER + 1, 2**64 - 1]),
    "data": st.integers(BASE - 64, BASE + SIZE + 64) | st.integers(0, 2**64 - 1),
    "op": st.integers(0, 120),
    "src": st.lists(st.integers(0, 5), max_size=10),
    "view_src": st.integers(0, 5),
    "op_params": st.lists(st.integers(-(2**31), 2**31 - 1), min_size=16, max_size=16),
}


@st.composite
def _mutated(draw: st.DrawFn) -> bytes:
    """The honest script with some tensor fields (and sizes) replaced."""
    script = _honest_script()
    out = []
    for message in script:
        body = bytearray(message[9:])
        if message[0] in (Command.SET_TENSOR, Command.GRAPH_COMPUTE) and draw(st.booleans()):
            if message[0] == Command.SET_TENSOR:
                offsets = [0]
                if draw(st.booleans()):
                    body[RPC_TENSOR.itemsize] = draw(st.integers(0, 255))  # cache flag
            else:
                (n_nodes,) = struct.unpack_from("<I", body, 4)
                base = 8 + 8 * n_nodes + 4
                offsets = [base + i * RPC_TENSOR.itemsize for i in range(3)]
            at = draw(st.sampled_from(offsets))
            record = np.frombuffer(bytes(body[at : at + RPC_TENSOR.itemsize]), RPC_TENSOR).copy()
            for name in draw(st.sets(st.sampled_from(sorted(_FIELDS)), min_size=1, max_size=3)):
                value = draw(_FIELDS[name])
                if name == "src":
                    value = [*value, *[0] * (10 - len(value))]  # ggml-rpc's 10 source slots
                record[name] = value
            body[at : at + RPC_TENSOR.itemsize] = record.tobytes()
        if draw(st.integers(0, 9)) == 0:
            body = body[: draw(st.integers(0, len(body)))]
        out.append(struct.pack("<BQ", message[0], len(body)) + bytes(body))
    return b"".join(out)


@FUZZ
@given(_mutated(), st.lists(st.integers(0, 3000), max_size=6))
def test_mutated_sessions_never_forward_an_unsafe_request(data: bytes, cuts: list[int]) -> None:
    session = Session().open().buffer()
    _oracle(_run(session, data, cuts))


@FUZZ
@given(
    _FIELDS["type"],
    _FIELDS["ne"],
    _FIELDS["nb"],
    _FIELDS["buffer"],
    _FIELDS["data"],
)
def test_the_one_tensor_path_agrees_with_the_vectorised_one(
    kind: int, ne: list[int], nb: list[int], buffer: int, data: int
) -> None:
    """Small requests use plain integers, graphs numpy: both must decide alike."""
    session = Session().open().buffer()
    record = np.zeros(1, RPC_TENSOR)
    record["type"], record["ne"], record["nb"] = kind, ne, nb
    record["buffer"], record["data"] = buffer, data
    fast = one_tensor(record.tobytes(), 0, session.filter.buffers, TABLE)
    fault = tensor_faults(record, session.filter.buffers, TABLE)
    if isinstance(fast, str):
        assert fault is not None
    else:
        assert fault is None
        extents = tensor_extents(record, TABLE)
        assert not isinstance(extents, str) and int(extents[0]) == fast
