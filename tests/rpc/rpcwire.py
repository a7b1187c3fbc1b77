"""A raw ggml-rpc client for tests: builds protocol 7.0.0 messages byte by byte.

llama.cpp's own client only sends well-formed requests (and aborts its process on any
surprise), so the hostile cases are written here directly: any tensor, any pointer,
any command number. ``RawClient`` speaks over a blocking socket; the builders return
bytes so pure tests can feed them to :class:`aria.rpc.filter.RpcFilter`.
"""

from __future__ import annotations

import socket
import struct
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from aria.rpc.wire import HEADER, RPC_TENSOR, Command

F32, Q8_0 = 0, 8


def request(command: int, body: bytes = b"") -> bytes:
    return HEADER.pack(command, len(body)) + body


def response(body: bytes) -> bytes:
    return struct.pack("<Q", len(body)) + body


def hello() -> bytes:
    return request(Command.HELLO, bytes(24))


def tensor(
    *,
    id: int = 1,
    type: int = F32,
    buffer: int = 0,
    data: int = 0,
    ne: Sequence[int] = (4, 1, 1, 1),
    nb: Sequence[int] | None = None,
    op: int = 0,
    src: Sequence[int] = (),
    view_src: int = 0,
    op_param0: int = 0,
) -> bytes:
    """One packed ``rpc_tensor``; ``nb`` defaults to a dense F32 layout."""
    record = np.zeros(1, dtype=RPC_TENSOR)
    record["id"], record["type"], record["buffer"], record["data"] = id, type, buffer, data
    record["ne"] = ne
    if nb is None:
        nb = [4, 4 * ne[0], 4 * ne[0] * ne[1], 4 * ne[0] * ne[1] * ne[2]]
    record["nb"] = nb
    record["op"] = op
    record["op_params"][0, 0] = op_param0
    record["src"][0, : len(src)] = list(src)
    record["view_src"] = view_src
    return record.tobytes()


def alloc(size: int, device: int = 0) -> bytes:
    return request(Command.ALLOC_BUFFER, struct.pack("<IQ", device, size))


def get_base(buffer: int) -> bytes:
    return request(Command.BUFFER_GET_BASE, struct.pack("<Q", buffer))


def free(buffer: int) -> bytes:
    return request(Command.FREE_BUFFER, struct.pack("<Q", buffer))


def set_tensor(header: bytes, payload: bytes, *, offset: int = 0, cache: int = 0) -> bytes:
    return request(Command.SET_TENSOR, header + struct.pack("<BQ", cache, offset) + payload)


def set_tensor_hash(header: bytes, digest: int, *, offset: int = 0) -> bytes:
    return request(Command.SET_TENSOR_HASH, header + struct.pack("<QQ", offset, digest))


def get_tensor(header: bytes, *, offset: int = 0, size: int) -> bytes:
    return request(Command.GET_TENSOR, header + struct.pack("<QQ", offset, size))


def graph(nodes: Sequence[int], tensors: Sequence[bytes], device: int = 0) -> bytes:
    body = struct.pack("<II", device, len(nodes)) + struct.pack(f"<{len(nodes)}Q", *nodes)
    body += struct.pack("<I", len(tensors)) + b"".join(tensors)
    return request(Command.GRAPH_COMPUTE, body)


def recompute(device: int = 0) -> bytes:
    return request(Command.GRAPH_RECOMPUTE, struct.pack("<I", device))


@dataclass
class RawClient:
    """A blocking ggml-rpc connection that sends whatever it is told to."""

    sock: socket.socket
    buffers: dict[int, int] = field(default_factory=dict)  # pointer -> base

    @classmethod
    def connect(cls, port: int, timeout_s: float = 10.0) -> RawClient:
        return cls(socket.create_connection(("127.0.0.1", port), timeout=timeout_s))

    def close(self) -> None:
        self.sock.close()

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def read(self, size: int) -> bytes:
        data = b""
        while len(data) < size:
            more = self.sock.recv(size - len(data))
            if not more:
                raise ConnectionError("the server closed the connection")
            data += more
        return data

    def answer(self) -> bytes:
        (size,) = struct.unpack("<Q", self.read(8))
        return self.read(size)

    def hello(self) -> tuple[int, int, int]:
        self.send(hello())
        body = self.answer()
        return body[0], body[1], body[2]

    def alloc(self, size: int) -> tuple[int, int]:
        """(pointer, base) of a new buffer."""
        self.send(alloc(size))
        pointer, _size = struct.unpack("<QQ", self.answer())
        self.send(get_base(pointer))
        (base,) = struct.unpack("<Q", self.answer())
        self.buffers[pointer] = base
        return pointer, base

    def closed(self, wait_s: float = 5.0) -> bool:
        """Whether the other side closed the connection (within ``wait_s``)."""
        self.sock.settimeout(wait_s)
        try:
            return self.sock.recv(1) == b""
        except ConnectionResetError:
            return True
        except TimeoutError:
            return False
