"""Shape and type rules of the graph ops a peer may run on this worker (pure, numpy).

The worker trusts a graph's shapes: its CPU kernels assume what ggml's op constructors
(``ggml_mul_mat``, ``ggml_add``…) asserted when the graph was built on the client, and
abort (``GGML_ASSERT``) or read out of bounds when a peer sends a node that could not
have been built. Each allowed op therefore has a rule here, written from its
constructor in ``ggml.c`` and its kernel's asserts in ``ggml-cpu/ops.cpp``: source
count, source and result shapes, types the kernel implements, strides it requires, and
the op parameters it asserts on. An op without a rule is not allowed at all.

Values a kernel reads at run time from tensor *data* (``GET_ROWS``/``SET_ROWS`` row
indices) cannot be checked from the graph: a bad index still makes the worker assert,
which ends that worker process only (the node starts a new one and penalises the peer).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from aria.rpc.wire import MAX_SRC, GgmlTable

__all__ = ["op_fault"]

Mask = npt.NDArray[np.bool_]
F32, F16, I32, I64, BF16 = 0, 1, 26, 27, 30
_FLOATS = (F32, F16, BF16)
# (src0, src1, dst) types ggml-cpu's binary ops implement (binary-ops.cpp), as codes.
_BINARY = np.array(
    [
        a * 10_000 + b * 100 + c
        for a, b, c in (
            (F32, F32, F32),
            (F16, F16, F16),
            (BF16, BF16, BF16),
            (BF16, F32, BF16),
            (BF16, F32, F32),
            (F16, F32, F16),
            (F16, F32, F32),
        )
    ]
)


@dataclass(frozen=True)
class _View:
    """One role (the node, or its source in one slot) for k nodes, as arrays."""

    present: Mask
    type: npt.NDArray[np.int64]
    ne: npt.NDArray[np.int64]
    nb: npt.NDArray[np.int64]
    params: npt.NDArray[np.int32]
    type_size: npt.NDArray[np.int64]
    block: npt.NDArray[np.int64]

    @property
    def elements(self) -> npt.NDArray[np.int64]:
        return np.asarray(self.ne.prod(axis=1))

    def is_type(self, *kinds: int) -> Mask:
        return np.isin(self.type, kinds)

    def packed_rows(self) -> Mask:
        """ggml_is_contiguous_rows: elements of a row are adjacent."""
        return np.asarray(self.nb[:, 0] == self.type_size)

    def contiguous(self) -> Mask:
        """ggml_is_contiguous: dense in every dimension (size-1 dimensions aside)."""
        row = self.ne[:, 0] // np.maximum(self.block, 1) * self.type_size
        expected = np.stack(
            [self.type_size, row, row * self.ne[:, 1], row * self.ne[:, 1] * self.ne[:, 2]], 1
        )
        return np.asarray(((self.nb == expected) | (self.ne == 1)).all(axis=1))

    def contiguous_1(self) -> Mask:
        """ggml_is_contiguous_1: packed rows (dimension 0 dense)."""
        return self.packed_rows()

    def float_param(self, index: int) -> npt.NDArray[np.float32]:
        return np.ascontiguousarray(self.params[:, index]).view(np.float32)


def _same(a: _View, b: _View) -> Mask:
    return np.asarray((a.ne == b.ne).all(axis=1))


def _repeats(small: _View, big: _View) -> Mask:
    """ggml_can_repeat(small, big): each of big's dimensions is a multiple of small's."""
    return np.asarray(((small.ne > 0) & (big.ne % np.maximum(small.ne, 1) == 0)).all(axis=1))


def _row_dense(view: _View) -> Mask:
    return np.asarray(view.nb[:, 0] == view.type_size)


# -- rules: each returns the nodes that BREAK it ---------------------------------------


def _nop_view(d: _View, s: list[_View], table: GgmlTable) -> Mask:
    """VIEW/PERMUTE/TRANSPOSE compute nothing; the result keeps its source's type."""
    return np.asarray(d.type != s[0].type)


def _reshape(d: _View, s: list[_View], table: GgmlTable) -> Mask:
    return np.asarray(_nop_view(d, s, table) | (d.elements != s[0].elements))


def _copy(d: _View, s: list[_View], table: GgmlTable) -> Mask:
    """DUP/CONT/CPY: same element count; conversions only between the float types."""
    floats = s[0].is_type(*_FLOATS) & d.is_type(*_FLOATS)
    same_plain = (s[0].type == d.type) & (d.block == 1)
    return np.asarray((d.elements != s[0].elements) | ~(floats | same_plain))


def _binary(d: _View, s: list[_View], table: GgmlTable) -> Mask:
    kinds = np.isin(s[0].type * 10_000 + s[1].type * 100 + d.type, _BINARY)
    return np.asarray(
        ~kinds
        | ~_repeats(s[1], s[0])
        | ~_same(s[0], d)
        | ~_row_dense(d)
        | ~_row_dense(s[0])
        | ~_row_dense(s[1])
    )


def _norm(d: _View, s: list[_View], table: GgmlTable) -> Mask:
    eps = d.float_param(0)
    return np.asarray(
        ~_same(s[0], d)
        | ~s[0].is_type(F32)
        | ~d.is_type(F32)
        | ~_row_dense(s[0])
        | ~_row_dense(d)
        | ~(np.isfinite(eps) & (eps >= 0))
    )


def _mul_mat(d: _View, s: list[_View], table: GgmlTable) -> Mask:
    a, b = s[0], s[1]
    weights = np.isin(a.type, list(table.weight_types))
    shape = (
        (a.ne[:, 0] == b.ne[:, 0])
        & (b.ne[:, 2] % np.maximum(a.ne[:, 2], 1) == 0)
        & (b.ne[:, 3] % np.maximum(a.ne[:, 3], 1) == 0)
        & (a.ne[:, 2] > 0)
        & (a.ne[:, 3] > 0)
    )
    result = (
        (d.ne[:, 0] == a.ne[:, 1])
        & (d.ne[:, 1] == b.ne[:, 1])
        & (d.ne[:, 2] == b.ne[:, 2])
        & (d.ne[:, 3] == b.ne[:, 3])
    )
    strides = (
        _row_dense(a)
        & _row_dense(b)
        & (a.nb[:, 0] <= a.nb[:, 1])  # not transposed
        & (d.nb[:, 0] == 4)
        & (d.nb[:, 0] <= d.nb[:, 1])
        & (d.nb[:, 1] <= d.nb[:, 2])
        & (d.nb[:, 2] <= d.nb[:, 3])
    )
    return np.asarray(~(weights & b.is_type(F32) & d.is_type(F32) & shape & result & strides))


def _get_rows(d: _View, s: list[_View], table: GgmlTable) -> Mask:
    a, rows = s[0], s[1]
    shape = (
        (a.ne[:, 2] == rows.ne[:, 1])
        & (a.ne[:, 3] == rows.ne[:, 2])
        & (rows.ne[:, 3] == 1)
        & (d.ne[:, 0] == a.ne[:, 0])
        & (d.ne[:, 1] == rows.ne[:, 0])
        & (d.ne[:, 2] == rows.ne[:, 1])
        & (d.ne[:, 3] == rows.ne[:, 2])
    )
    kinds = (np.isin(a.type, list(table.weight_types)) & d.is_type(F32)) | (
        a.is_type(I32) & d.is_type(I32)
    )
    return np.asarray(~(shape & kinds & rows.is_type(I32) & _row_dense(d)))


def _set_rows(d: _View, s: list[_View], table: GgmlTable) -> Mask:
    b, c, a = s[0], s[1], s[2]  # ggml_set_rows(a, b, c): src = (b, c, a)
    shape = (
        (a.ne[:, 0] == b.ne[:, 0])
        & (a.ne[:, 2] == b.ne[:, 2])
        & (a.ne[:, 3] == b.ne[:, 3])
        & (b.ne[:, 1] == c.ne[:, 0])
        & (c.ne[:, 1] > 0)
        & (c.ne[:, 2] > 0)
        & (b.ne[:, 2] % np.maximum(c.ne[:, 1], 1) == 0)
        & (b.ne[:, 3] % np.maximum(c.ne[:, 2], 1) == 0)
        & (c.ne[:, 3] == 1)
        & _same(a, d)
    )
    kinds = (
        b.is_type(F32, F16)
        & c.is_type(I64, I32)
        & (d.type == a.type)
        & np.isin(d.type, list(table.row_types))
    )
    return np.asarray(~(shape & kinds & a.packed_rows() & b.packed_rows() & d.packed_rows()))


def _soft_max(d: _View, s: list[_View], table: GgmlTable) -> Mask:
    a, mask, sinks = s[0], s[1], s[2]
    ok = a.contiguous() & a.is_type(F32) & d.is_type(F32) & _same(a, d) & d.contiguous()
    masked = (
        mask.is_type(F16, F32)
        & mask.contiguous()
        & (mask.ne[:, 0] == a.ne[:, 0])
        & (mask.ne[:, 1] >= a.ne[:, 1])
        & (mask.ne[:, 2] > 0)
        & (mask.ne[:, 3] > 0)
        & (a.ne[:, 2] % np.maximum(mask.ne[:, 2], 1) == 0)
        & (a.ne[:, 3] % np.maximum(mask.ne[:, 3], 1) == 0)
    )
    sunk = sinks.is_type(F32) & (sinks.elements >= a.ne[:, 2]) & _row_dense(sinks)
    return np.asarray(~(ok & (~mask.present | masked) & (~sinks.present | sunk)))


def _rope(d: _View, s: list[_View], table: GgmlTable) -> Mask:
    a, positions, factors = s[0], s[1], s[2]
    n_dims, mode, n_offs = d.params[:, 1], d.params[:, 2], d.params[:, 15]
    params = (
        np.isin(mode, list(table.rope_modes))
        & (n_dims > 0)
        & (n_dims % 2 == 0)
        & (n_offs >= 0)
        & (n_offs % 2 == 0)
        & (n_offs.astype(np.int64) + n_dims <= a.ne[:, 0])
    )
    vector = (positions.ne[:, 1:] == 1).all(axis=1) & positions.is_type(I32)
    shape = (positions.ne[:, 0] == a.ne[:, 2]) & _same(a, d) & (a.type == d.type)
    kinds = a.is_type(F32, F16) & (d.nb[:, 0] == a.nb[:, 0]) & _row_dense(a)
    scaled = factors.is_type(F32) & (factors.ne[:, 0] >= n_dims // 2)
    return np.asarray(~(params & vector & shape & kinds & (~factors.present | scaled)))


def _glu(d: _View, s: list[_View], table: GgmlTable) -> Mask:
    a, b = s[0], s[1]
    halved = np.stack([a.ne[:, 0] // 2, a.ne[:, 1], a.ne[:, 2], a.ne[:, 3]], 1)
    shape = np.where(b.present, _same(a, d), (d.ne == halved).all(axis=1) & (a.ne[:, 0] % 2 == 0))
    pair = ~b.present | (_same(a, b) & (a.type == b.type) & b.contiguous_1())
    kinds = a.is_type(F32, F16) & (d.type == a.type) & a.contiguous_1() & d.contiguous_1()
    return np.asarray(~(shape & pair & kinds))


def _elementwise(d: _View, s: list[_View], table: GgmlTable) -> Mask:
    """UNARY and SCALE: same shape and type, float rows."""
    a = s[0]
    return np.asarray(
        ~(
            _same(a, d)
            & a.is_type(F32, F16)
            & (d.type == a.type)
            & a.packed_rows()
            & d.packed_rows()
        )
    )


Rule = Callable[[_View, list[_View], GgmlTable], Mask]
# name -> (sources required, sources allowed, rule)
_RULES: dict[str, tuple[int, int, Rule | None]] = {
    "NONE": (0, 0, None),
    "DUP": (1, 1, _copy),
    "CONT": (1, 1, _copy),
    "CPY": (2, 2, _copy),
    "RESHAPE": (1, 1, _reshape),
    "VIEW": (1, 1, _nop_view),
    "PERMUTE": (1, 1, _nop_view),
    "TRANSPOSE": (1, 1, _nop_view),
    "ADD": (2, 2, _binary),
    "SUB": (2, 2, _binary),
    "MUL": (2, 2, _binary),
    "DIV": (2, 2, _binary),
    "NORM": (1, 1, _norm),
    "RMS_NORM": (1, 1, _norm),
    "MUL_MAT": (2, 2, _mul_mat),
    "GET_ROWS": (2, 2, _get_rows),
    "SET_ROWS": (3, 3, _set_rows),
    "SOFT_MAX": (1, 3, _soft_max),
    "ROPE": (2, 3, _rope),
    "GLU": (1, 2, _glu),
    "UNARY": (1, 1, _elementwise),
    "SCALE": (1, 1, _elementwise),
}


def op_fault(tensors: npt.NDArray[np.void], table: GgmlTable) -> str | None:
    """The first node whose op breaks its rule, described; None when all pass.

    Expects a graph whose ids are unique and whose sources are all present (checked
    before); every allowed op must have a rule here.
    """
    ids = tensors["id"]
    order = np.argsort(ids)
    sorted_ids = ids[order]
    sources = tensors["src"]
    index = order[np.minimum(np.searchsorted(sorted_ids, sources), ids.size - 1)]
    index = np.where(sources == 0, -1, index)
    ops = tensors["op"].astype(np.int64)
    for name, op in table.op_ids.items():
        nodes = np.nonzero(ops == op)[0]
        if nodes.size == 0:
            continue
        required, allowed, rule = _RULES[name]
        slots = index[nodes]
        bad = (slots[:, :required] < 0).any(axis=1) | (slots[:, allowed:] >= 0).any(axis=1)
        if rule is not None and not bad.all():
            views = [_view(tensors, slots[:, k], table) for k in range(MAX_SRC)]
            bad |= rule(_view(tensors, nodes, table), views, table)
        if bad.any():
            label = tensors["name"][nodes[np.argmax(bad)]].decode(errors="replace")
            return f"{name} node {label!r} breaks its shape or type rules"
    return None


def _view(tensors: npt.NDArray[np.void], rows: npt.NDArray[np.int64], table: GgmlTable) -> _View:
    present = rows >= 0
    picked = tensors[np.maximum(rows, 0)]
    kind = picked["type"].astype(np.int64)
    return _View(
        present=present,
        type=np.where(present, kind, -1),
        ne=picked["ne"].astype(np.int64),
        nb=picked["nb"].astype(np.int64),
        params=picked["op_params"],
        type_size=table.type_size[kind].astype(np.int64),
        block=table.block[kind].astype(np.int64),
    )
