"""The ggml-rpc wire table matches the ggml that ARIA's llama.cpp was built with."""

from __future__ import annotations

import ctypes

import pytest

from aria.rpc.ggml_rpc import library_dir
from aria.rpc.wire import RPC_TENSOR, load_table


@pytest.fixture(scope="module")
def ggml() -> ctypes.CDLL:
    lib = ctypes.CDLL(str(library_dir() / "libggml-base.so.0"))
    lib.ggml_blck_size.restype, lib.ggml_blck_size.argtypes = ctypes.c_int64, [ctypes.c_int]
    lib.ggml_type_size.restype, lib.ggml_type_size.argtypes = ctypes.c_size_t, [ctypes.c_int]
    lib.ggml_op_name.restype, lib.ggml_op_name.argtypes = ctypes.c_char_p, [ctypes.c_int]
    return lib


def test_type_sizes_and_blocks_match_libggml(ggml: ctypes.CDLL) -> None:
    table = load_table()
    for kind in range(table.n_types):
        assert table.block[kind] == ggml.ggml_blck_size(kind), kind
        if table.block[kind]:
            assert table.type_size[kind] == ggml.ggml_type_size(kind), kind


def test_allowed_ops_are_named_as_libggml_names_them(ggml: ctypes.CDLL) -> None:
    table = load_table()
    for name, op in table.op_ids.items():
        assert ggml.ggml_op_name(op).decode() == name
    assert ggml.ggml_op_name(table.n_ops - 1).decode() == "GLU"  # GGML_OP_COUNT - 1
    for custom in ("MAP_CUSTOM1", "MAP_CUSTOM2", "MAP_CUSTOM3", "CUSTOM"):
        assert custom not in table.op_ids


def test_rpc_tensor_is_the_packed_296_bytes_of_ggml_rpc() -> None:
    assert RPC_TENSOR.itemsize == 296
    assert RPC_TENSOR.fields is not None
    assert RPC_TENSOR.fields["data"][1] == 8 + 4 + 8 + 16 + 16 + 4 + 64 + 4 + 80 + 8 + 8
