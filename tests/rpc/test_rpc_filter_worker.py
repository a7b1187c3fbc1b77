"""The filter in front of a real RPC worker: valid graphs run, broken ones never reach it.

Each trial builds one small graph the way ggml's constructors would (ADD, MUL, MUL_MAT
over quantized weights, RMS_NORM, ROPE, SOFT_MAX with a mask, GLU, GET_ROWS, SET_ROWS,
CONT, CPY, SCALE, UNARY), then, most of the time, breaks one field of one tensor (type,
a dimension, a stride, an op parameter, a source). The session goes through the filter
into one real confined worker; after every trial the worker must be the same live
process. About half the trials are valid and really computed.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
from anyio.from_thread import start_blocking_portal

from aria.p2p.transport.guarded import guarded
from aria.p2p.transport.relay import Relay, TcpFarSide
from aria.rpc import RpcWorker, start_rpc_worker
from aria.rpc.filter import FilterLimits, RpcFilter
from aria.rpc.ggml_rpc import parse_endpoint
from aria.rpc.wire import RPC_TENSOR, load_table
from tests.rpc import rpcwire as w

pytestmark = pytest.mark.slow

TABLE = load_table()
TRIALS = 240


class Graph:
    """Tensors laid out one after another in one buffer."""

    def __init__(self, pointer: int, base: int) -> None:
        self.pointer, self.base, self.used = pointer, base, 0
        self.records: list[np.ndarray] = []

    def add(
        self,
        kind: int,
        ne: list[int],
        op: int = 0,
        src: tuple[int, ...] = (),
        params: dict[int, int] | None = None,
    ) -> int:
        size, block = int(TABLE.type_size[kind]), int(TABLE.block[kind])
        row = ne[0] // block * size
        record = np.zeros(1, RPC_TENSOR)
        record["id"], record["type"], record["buffer"] = len(self.records) + 1, kind, self.pointer
        record["data"] = self.base + self.used
        record["ne"] = ne
        record["nb"] = [size, row, row * ne[1], row * ne[1] * ne[2]]
        record["op"] = op
        record["src"][0, : len(src)] = src
        for index, value in (params or {}).items():
            record["op_params"][0, index] = value
        self.used += (row * ne[1] * ne[2] * ne[3] + 63) // 64 * 64
        self.records.append(record)
        return len(self.records)


def _valid(g: Graph, rng: random.Random) -> int:
    """One node over fresh sources, shaped as ggml's constructor would shape it."""

    def d() -> int:
        return rng.choice([1, 2, 3, 4])

    m = [32 * rng.choice([1, 2]), d(), d(), d()]
    kind = rng.choice(["binary", "mul_mat", "norm", "rope", "soft_max", "glu", "rows", "copy"])
    if kind == "binary":
        a, b = g.add(0, m), g.add(0, [m[0], rng.choice([1, m[1]]), 1, 1])
        return g.add(0, m, rng.choice([2, 6, 7, 8]), (a, b))
    if kind == "mul_mat":
        weights = g.add(rng.choice([0, 1, 2, 3, 8, 12, 34, 35]), [256, d(), 1, 1])
        x = g.add(0, [256, d(), d(), 1])
        wa, xa = g.records[weights - 1], g.records[x - 1]
        shape = [int(wa["ne"][0, 1]), int(xa["ne"][0, 1]), int(xa["ne"][0, 2]), 1]
        return g.add(0, shape, 29, (weights, x))
    if kind == "norm":
        eps = int(np.float32(1e-5).view(np.int32))
        return g.add(0, m, rng.choice([24, 25]), (g.add(0, m),), {0: eps})
    if kind == "rope":
        heads = d()
        x, pos = g.add(0, [64, heads, 4, 1]), g.add(26, [4, 1, 1, 1])
        params = {1: rng.choice([32, 64]), 2: rng.choice([0, 2])}
        return g.add(0, [64, heads, 4, 1], 48, (x, pos), params)
    if kind == "soft_max":
        x, mask = g.add(0, m), g.add(0, [m[0], m[1], 1, 1])
        return g.add(0, m, 46, (x, mask))
    if kind == "glu":
        a, b = g.add(0, m), g.add(0, m)
        return g.add(0, m, 100, (a, b), {0: rng.randrange(7)})
    if kind == "rows":
        if rng.random() < 0.5:
            table, index = g.add(rng.choice([0, 1, 8]), [32, 8, 1, 1]), g.add(26, [3, 1, 1, 1])
            return g.add(0, [32, 3, 1, 1], 40, (table, index))
        cache_type = rng.choice([0, 1])
        cache, values = g.add(cache_type, [32, 8, 1, 1]), g.add(0, [32, 3, 1, 1])
        index = g.add(27, [3, 1, 1, 1])
        return g.add(cache_type, [32, 8, 1, 1], 42, (values, index, cache))
    source = g.add(0, m)
    op, params = rng.choice([(35, {}), (32, {}), (91, {0: rng.randrange(22)})])
    return g.add(rng.choice([0, 1]) if op == 35 else 0, m, op, (source,), params)


def _break(g: Graph, rng: random.Random) -> None:
    record = rng.choice(g.records)
    field = rng.choice(["type", "ne", "nb", "op_params", "src"])
    if field == "type":
        record["type"] = rng.choice([0, 1, 2, 8, 12, 26, 27, 30])
    elif field == "ne":
        record["ne"][0, rng.randrange(4)] = rng.choice([0, 1, 2, 3, 5, 7, 64, 256])
    elif field == "nb":
        record["nb"][0, rng.randrange(4)] = rng.choice([0, 1, 2, 4, 8, 128, 4096])
    elif field == "op_params":
        record["op_params"][0, rng.randrange(16)] = rng.choice([-1, 0, 1, 2, 3, 8, 31, 64, 1 << 20])
    else:
        record["src"][0, rng.randrange(3)] = rng.randrange(0, len(g.records) + 1)


@pytest.fixture
def worker(tmp_path: Path) -> Iterator[RpcWorker]:
    started = start_rpc_worker(log_path=tmp_path / "rpc-worker.log", threads=1, memory_gb=0.5)
    yield started
    started.stop()


def _trial(port: int, rng: random.Random, mutate: bool) -> bool:
    """One session; True when the worker computed the graph and answered."""
    client = w.RawClient.connect(port, timeout_s=20)
    try:
        client.hello()
        pointer, base = client.alloc(1 << 22)
        graph = Graph(pointer, base)
        node = _valid(graph, rng)
        if mutate:
            _break(graph, rng)
        records = [r.tobytes() for r in graph.records]
        client.send(w.graph([node], records))
        client.send(w.get_tensor(records[node - 1], size=4))
        client.answer()
        return True
    except (ConnectionError, OSError):
        return False
    finally:
        client.close()


def test_broken_graphs_are_cut_before_the_worker_and_valid_ones_run(worker: RpcWorker) -> None:
    relay = Relay(
        TcpFarSide(*parse_endpoint(worker.endpoint)),
        join=guarded(lambda: RpcFilter(FilterLimits(1 << 28))),
    )
    rng = random.Random(20261204)
    answered = 0
    alive: Callable[[], bool] = worker.alive
    with start_blocking_portal("trio") as portal:
        future, port = portal.start_task(relay.serve)
        try:
            for trial in range(TRIALS):
                answered += _trial(port, rng, mutate=trial % 4 != 0)
                time.sleep(0.01)
                assert alive(), f"the worker died at trial {trial}"
        finally:
            future.cancel()
    assert answered >= TRIALS // 4  # every valid graph at least
