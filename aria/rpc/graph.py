"""Checks on a ``GRAPH_COMPUTE`` request before it reaches the worker (pure, numpy).

The worker rebuilds the graph from the message (``rpc_server::graph_compute``) and runs
it: every node's op, with the tensors the message describes. What would make it abort,
corrupt memory or run a function pointer it was handed is refused here:

* ``device`` 0, at least one node, node and tensor counts within the session's
  limits, and a message of exactly the size its counts announce;
* tensor ids non-zero and unique; every node id, source and view source among the
  message's tensors; no node listed twice (a repeated node makes the worker write
  the use count outside its hash table);
* only allowed ops (:mod:`aria.rpc.wire` table: no custom ops, no training
  ops), and for ``UNARY``/``GLU`` a kernel selector the CPU backend knows;
* every tensor inside a buffer of this session (:func:`~aria.rpc.wire.tensor_faults`);
* every node consistent with its sources (:func:`~aria.rpc.ops.op_fault`).
"""

from __future__ import annotations

import struct

import numpy as np
import numpy.typing as npt

from aria.rpc.ops import op_fault
from aria.rpc.wire import GRAPH_HEADER, RPC_TENSOR, BufferTable, GgmlTable, tensor_faults

__all__ = ["graph_fault"]

_COUNT = struct.Struct("<I")


def graph_fault(
    body: bytes, buffers: BufferTable, table: GgmlTable, *, max_nodes: int, max_tensors: int
) -> str | None:
    """Why this ``GRAPH_COMPUTE`` body must not reach the worker, or None."""
    if len(body) < GRAPH_HEADER.size:
        return "graph message too short"
    device, n_nodes = GRAPH_HEADER.unpack_from(body)
    if device != 0:
        return "this worker serves only device 0"
    if not 0 < n_nodes <= max_nodes:
        return f"graph of {n_nodes} nodes (limit {max_nodes})"
    tensors_at = GRAPH_HEADER.size + 8 * n_nodes + _COUNT.size
    if len(body) < tensors_at:
        return "graph message shorter than its node list"
    (n_tensors,) = _COUNT.unpack_from(body, tensors_at - _COUNT.size)
    if n_tensors > max_tensors:
        return f"graph of {n_tensors} tensors (limit {max_tensors})"
    if len(body) != tensors_at + RPC_TENSOR.itemsize * n_tensors:
        return "graph message size does not match its counts"
    nodes = np.frombuffer(body, dtype="<u8", count=n_nodes, offset=GRAPH_HEADER.size)
    tensors = np.frombuffer(body, dtype=RPC_TENSOR, count=n_tensors, offset=tensors_at)
    return (
        _structure_fault(nodes, tensors)
        or _op_fault(tensors, table)
        or tensor_faults(tensors, buffers, table)
        or op_fault(tensors, table)
    )


def _structure_fault(nodes: npt.NDArray[np.uint64], tensors: npt.NDArray[np.void]) -> str | None:
    ids = np.sort(tensors["id"])
    if ids.size and ids[0] == 0:
        return "tensor id 0"
    if (ids[1:] == ids[:-1]).any():
        return "two tensors share an id"
    if np.unique(nodes).size != nodes.size:
        return "a node is listed twice"
    references = np.concatenate([tensors["src"].ravel(), tensors["view_src"]])
    references = references[references != 0]
    for wanted, what in ((nodes, "graph node"), (references, "source tensor")):
        if wanted.size and (ids.size == 0 or not _member(wanted, ids).all()):
            return f"{what} missing from the graph's tensors"
    return None


def _member(
    values: npt.NDArray[np.uint64], sorted_ids: npt.NDArray[np.uint64]
) -> npt.NDArray[np.bool_]:
    index = np.minimum(np.searchsorted(sorted_ids, values), sorted_ids.size - 1)
    return np.asarray(sorted_ids[index] == values)


def _op_fault(tensors: npt.NDArray[np.void], table: GgmlTable) -> str | None:
    ops = tensors["op"].astype(np.int64)
    outside = ops >= table.n_ops
    if outside.any():
        return f"unknown op {int(ops[outside][0])}"
    refused = ~table.op_allowed[ops]
    if refused.any():
        return f"op {int(ops[refused][0])} is not allowed from peers"
    limit = table.op_enum_limit[ops]
    selector = tensors["op_params"][:, 0].astype(np.int64)
    bad = (limit >= 0) & ((selector < 0) | (selector >= limit))
    if bad.any():
        return f"op {int(ops[bad][0])} with an unknown kernel selector {int(selector[bad][0])}"
    return None
