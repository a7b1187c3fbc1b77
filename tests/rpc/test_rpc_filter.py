"""The ggml-rpc filter as a pure machine: bytes in, forwarded bytes or a refusal out.

A fake worker answers like ggml-rpc's server does; every hostile case must be refused
before a single byte of the offending command is forwarded.
"""

from __future__ import annotations

import struct

import pytest

from aria.rpc.filter import FilterLimits, RpcFilter
from aria.rpc.wire import Command
from tests.rpc import rpcwire as w

POINTER, BASE, SIZE = 0x5000, 0x7F00_0000_0000, 4096


class Session:
    """One filtered connection with a scripted worker."""

    def __init__(self, **limits: float) -> None:
        self.now = 0.0
        self.filter = RpcFilter(FilterLimits(**{"max_alloc_bytes": 1 << 20, **limits}))  # type: ignore[arg-type]
        self.filter.start(self.now)

    def client(self, data: bytes) -> bytes:
        """Feed the peer's bytes; return what reaches the worker."""
        self.filter.receive_client(data, self.now)
        return bytes(self.filter.data_for_worker())

    def worker(self, data: bytes) -> bytes:
        """Feed the worker's bytes; return what reaches the peer."""
        self.filter.receive_worker(data, self.now)
        return bytes(self.filter.data_for_client())

    @property
    def refused(self) -> str | None:
        return None if self.filter.refusal is None else self.filter.refusal.reason

    def open(self) -> Session:
        assert self.client(w.hello()) == w.hello()
        assert self.worker(w.response(bytes([7, 0, 0, 0]) + bytes(24)))[8:11] == bytes([7, 0, 0])
        return self

    def buffer(self, size: int = SIZE, pointer: int = POINTER, base: int = BASE) -> Session:
        assert self.client(w.alloc(size)) == w.alloc(size)
        self.worker(w.response(struct.pack("<QQ", pointer, size)))
        assert self.client(w.get_base(pointer)) == w.get_base(pointer)
        self.worker(w.response(struct.pack("<Q", base)))
        return self


def placed(**fields: object) -> bytes:
    return w.tensor(**{"buffer": POINTER, "data": BASE, **fields})  # type: ignore[arg-type]


def test_an_honest_session_passes_byte_for_byte() -> None:
    s = Session().open().buffer()
    header = placed(ne=(8, 2, 1, 1))
    assert s.client(w.set_tensor(header, bytes(64))) == w.set_tensor(header, bytes(64))
    add = placed(id=3, ne=(8, 2, 1, 1), op=2, src=(1, 2))
    graph = w.graph([3], [placed(id=1, ne=(8, 2, 1, 1)), placed(id=2, ne=(8, 2, 1, 1)), add])
    assert s.client(graph) == graph
    assert s.client(w.recompute()) == w.recompute()
    asked = w.get_tensor(header, size=64)
    assert s.client(asked) == asked
    answer = w.response(bytes(range(64)))
    assert s.worker(answer[:20]) + s.worker(answer[20:]) == answer  # streamed through
    assert s.refused is None and s.filter.allocated_bytes == SIZE


def test_the_transport_upgrade_offer_is_zeroed_both_ways() -> None:
    s = Session()
    assert s.client(w.request(Command.HELLO, b"\xff" * 24)) == w.hello()
    answer = s.worker(w.response(bytes([7, 0, 0, 0]) + b"\xee" * 24))
    assert answer == w.response(bytes([7, 0, 0, 0]) + bytes(24))


@pytest.mark.parametrize(
    ("first", "reason"),
    [
        (w.alloc(16), "protocol"),  # HELLO must come first
        (w.request(18), "protocol"),  # RPC_CMD_NONE is never sent
        (w.request(200, b"x"), "protocol"),
        (w.request(Command.HELLO, bytes(23)), "protocol"),
    ],
)
def test_only_a_hello_opens_a_session(first: bytes, reason: str) -> None:
    s = Session()
    assert s.client(first) == b""
    assert s.refused == reason


@pytest.mark.parametrize(
    "data",
    [
        w.hello(),  # a second HELLO
        w.request(19),
        w.request(Command.GET_ALIGNMENT, struct.pack("<I", 1)),  # device 1 does not exist
        w.request(Command.GET_DEVICE_MEMORY, struct.pack("<Q", 0)),  # wrong size
        w.request(Command.DEVICE_COUNT, b"x"),
    ],
)
def test_malformed_commands_cut_the_session(data: bytes) -> None:
    s = Session().open()
    assert s.client(data) == b""
    assert s.refused == "protocol"


def test_allocations_are_capped_at_the_offer() -> None:
    s = Session(max_alloc_bytes=10_000).open().buffer(size=6000)
    assert s.client(w.alloc(5000)) == b""
    assert s.refused == "allocation"


def test_pipelined_allocations_count_before_their_answers() -> None:
    s = Session(max_alloc_bytes=10_000).open()
    assert s.client(w.alloc(6000)) != b""
    assert s.client(w.alloc(6000)) == b""  # the first is not answered yet, still counted
    assert s.refused == "allocation"


def test_freed_buffers_return_to_the_offer() -> None:
    s = Session(max_alloc_bytes=10_000).open().buffer(size=6000)
    assert s.client(w.free(POINTER)) == w.free(POINTER)
    assert s.filter.allocated_bytes == 0
    s.buffer(size=9000, pointer=POINTER + 64)
    assert s.refused is None


@pytest.mark.parametrize(
    "header",
    [
        w.tensor(buffer=0x9999, data=BASE),  # a buffer this session never allocated
        placed(data=BASE - 4),  # before the buffer
        placed(data=BASE + SIZE - 8),  # runs past the end
        placed(ne=(2048, 1, 1, 1)),  # larger than the buffer
        placed(ne=(4, 1 << 30, 1, 1), nb=(4, 0, 0, 0)),  # zero strides: overlapping
        placed(type=4),  # a removed type
        placed(type=99),
        placed(type=w.Q8_0, ne=(16, 1, 1, 1), nb=(34, 34, 34, 34)),  # not whole blocks
        placed(ne=(1 << 31, 1 << 31, 1, 1), nb=(1 << 31, 1 << 31, 0, 0)),
    ],
)
def test_tensors_outside_this_sessions_buffers_are_refused(header: bytes) -> None:
    s = Session().open().buffer()
    assert s.client(w.set_tensor(header, b"")) == b""
    assert s.refused == "bounds"


def test_a_buffer_whose_base_was_never_read_cannot_be_used() -> None:
    s = Session().open()
    s.client(w.alloc(SIZE))
    s.worker(w.response(struct.pack("<QQ", POINTER, SIZE)))
    assert s.client(w.set_tensor(placed(), bytes(16))) == b""
    assert s.refused == "bounds"


@pytest.mark.parametrize(
    "make",
    [
        lambda t: w.set_tensor(t, bytes(17)),  # one byte more than the tensor
        lambda t: w.set_tensor(t, bytes(8), offset=12),
        lambda t: w.get_tensor(t, size=17),
        lambda t: w.get_tensor(t, offset=1 << 63, size=1),
    ],
)
def test_reads_and_writes_stay_inside_their_tensor(make: object) -> None:
    """ggml_backend_tensor_set/get abort on these even inside the buffer."""
    s = Session().open().buffer()
    assert s.client(make(placed())) == b""  # type: ignore[operator]
    assert s.refused == "bounds"


def test_the_cache_flag_is_cleared_and_hash_loads_are_answered_here() -> None:
    s = Session().open().buffer()
    header = placed()
    assert s.client(w.set_tensor(header, bytes(16), cache=1)) == w.set_tensor(header, bytes(16))
    assert s.filter.stats.cache_flags_cleared == 1
    assert s.client(w.set_tensor_hash(header, 0xDEADBEEF)) == b""  # never reaches the worker
    assert s.filter.data_for_client() == w.response(b"\x00")  # "not cached": send the data
    assert s.refused is None


def test_a_local_answer_waits_for_the_workers_earlier_answers() -> None:
    s = Session().open().buffer()
    s.client(w.request(Command.GET_ALIGNMENT, struct.pack("<I", 0)))
    s.client(w.set_tensor_hash(placed(), 1))
    assert s.filter.data_for_client() == b""  # the alignment answer comes first
    alignment = w.response(struct.pack("<Q", 32))
    assert s.worker(alignment) == alignment + w.response(b"\x00")


def test_large_payloads_stream_through_without_being_held() -> None:
    s = Session(max_alloc_bytes=1 << 24).open().buffer(size=1 << 22)
    header = placed(ne=(1 << 20, 1, 1, 1))
    message = w.set_tensor(header, bytes(1 << 22))
    forwarded = b"".join(s.client(message[i : i + 65536]) for i in range(0, len(message), 65536))
    assert forwarded == message
    assert len(s.filter._client) == 0


def _graph_of(*tensors: bytes, nodes: tuple[int, ...] = (3,)) -> bytes:
    return w.graph(list(nodes), list(tensors))


A = placed(id=1, ne=(8, 1, 1, 1))
B = placed(id=2, ne=(8, 1, 1, 1))


@pytest.mark.parametrize(
    "graph",
    [
        _graph_of(A, B, placed(id=3, ne=(8, 1, 1, 1), op=95, src=(1, 2))),  # GGML_OP_CUSTOM
        _graph_of(A, B, placed(id=3, ne=(8, 1, 1, 1), op=92, src=(1,))),  # MAP_CUSTOM1
        _graph_of(A, B, placed(id=3, ne=(8, 1, 1, 1), op=98, src=(1,))),  # OPT_STEP_ADAMW
        _graph_of(A, B, placed(id=3, ne=(8, 1, 1, 1), op=101)),  # beyond GGML_OP_COUNT
        _graph_of(A, placed(id=3, ne=(8, 1, 1, 1), op=91, src=(1,), op_param0=22)),  # UNARY
        _graph_of(A, placed(id=3, ne=(8, 1, 1, 1), op=100, src=(1,), op_param0=-1)),  # GLU
        _graph_of(A, B, placed(id=3, ne=(8, 1, 1, 1), op=2, src=(1, 7))),  # unknown source
        _graph_of(A, B, placed(id=2, ne=(8, 1, 1, 1), op=2, src=(1, 2))),  # duplicate id
        _graph_of(A, B, placed(id=3, ne=(8, 1, 1, 1), op=2, src=(1, 2)), nodes=(3, 3)),
        _graph_of(A, B, placed(id=3, ne=(8, 1, 1, 1), op=2, src=(1, 2)), nodes=(0,)),
        _graph_of(A, placed(id=0, ne=(8, 1, 1, 1))),
        _graph_of(A, B, w.tensor(id=3, ne=(8, 1, 1, 1), op=2, src=(1, 2))),  # no buffer
        _graph_of(nodes=()),
        _graph_of(A, B, placed(id=3, ne=(8, 1, 1, 1), op=2, src=(1, 2)))[:-1],  # truncated
    ],
)
def test_graphs_are_checked_before_the_worker_runs_them(graph: bytes) -> None:
    s = Session().open().buffer()
    if len(graph) < 9 or struct.unpack_from("<Q", graph, 1)[0] != len(graph) - 9:
        graph = graph[:1] + struct.pack("<Q", len(graph) - 9) + graph[9:]  # size = body
    assert s.client(graph) == b""
    assert s.refused in ("graph", "bounds")


def test_oversized_graphs_are_refused_from_their_header() -> None:
    s = Session(max_graph_nodes=4, max_graph_tensors=4).open()
    assert s.client(w.request(Command.GRAPH_COMPUTE)[:1] + struct.pack("<Q", 1 << 40)) == b""
    assert s.refused == "graph"


def test_recompute_needs_a_graph_that_is_still_valid() -> None:
    s = Session().open().buffer()
    assert s.client(w.recompute()) == b""
    assert s.refused == "graph"
    s = Session().open().buffer()
    s.client(_graph_of(A, B, placed(id=3, ne=(8, 1, 1, 1), op=2, src=(1, 2))))
    s.client(w.free(POINTER))
    assert s.client(w.recompute()) == b""
    assert s.refused == "graph"


def test_idle_sessions_end_but_computing_ones_do_not() -> None:
    s = Session(idle_s=30).open().buffer()
    s.now = 29
    s.filter.handle_timer(s.now)
    assert s.refused is None
    s.client(w.get_tensor(placed(), size=16))  # the worker now owes an answer
    s.now = 100
    s.filter.handle_timer(s.now)
    assert s.refused is None
    s.worker(w.response(bytes(16)))
    s.now = 131
    s.filter.handle_timer(s.now)
    assert s.refused == "idle"


def test_sessions_end_after_their_duration_and_byte_quota() -> None:
    s = Session(max_session_s=60).open()
    s.now = 61
    s.filter.handle_timer(s.now)
    assert s.refused == "duration"
    s = Session(max_client_bytes=100).open()
    assert s.client(w.request(Command.GET_ALIGNMENT, struct.pack("<I", 0)) * 10) == b""
    assert s.refused == "quota"


def test_bytes_the_client_did_not_ask_for_end_the_session() -> None:
    s = Session().open()
    assert s.worker(w.response(b"surprise")) == b""
    assert s.refused == "worker"


def test_after_a_refusal_nothing_moves() -> None:
    s = Session().open()
    s.client(w.request(99))
    assert s.client(w.hello()) == b"" and s.worker(w.response(bytes(28))) == b""
    assert s.filter.deadline is None
