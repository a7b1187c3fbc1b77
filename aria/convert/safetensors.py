"""Read and write the safetensors format with numpy alone, one tensor at a time.

The format (https://huggingface.co/docs/safetensors) is an 8-byte little-endian header
length, a JSON header mapping each tensor name to ``dtype``, ``shape`` and
``data_offsets`` (relative to the end of the header), then the raw little-endian bytes.
The ``safetensors`` package's numpy loader cannot return ``BF16`` (numpy has no such
dtype) and would pull a Rust wheel in for a 40-line format, so ARIA reads it itself:
each tensor is a read-only ``numpy.memmap`` view, so a converter touches one tensor's
pages at a time and memory stays bounded by the largest tensor, not the file.
"""

from __future__ import annotations

import json
import os
import struct
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from aria.errors import StoreError

__all__ = ["SafetensorsFile", "TensorInfo", "bf16_to_f32", "write_safetensors"]

# safetensors dtype -> numpy dtype of the stored bytes (BF16 is read as raw uint16).
_DTYPES: Mapping[str, np.dtype[Any]] = {
    "F64": np.dtype("<f8"),
    "F32": np.dtype("<f4"),
    "F16": np.dtype("<f2"),
    "BF16": np.dtype("<u2"),
    "I64": np.dtype("<i8"),
    "I32": np.dtype("<i4"),
    "I16": np.dtype("<i2"),
    "I8": np.dtype("i1"),
    "U8": np.dtype("u1"),
    "BOOL": np.dtype("?"),
}
_MAX_HEADER = 100 << 20  # the reference implementation refuses larger headers too


@dataclass(frozen=True)
class TensorInfo:
    """Where one tensor lives in its file."""

    name: str
    dtype: str  # safetensors name: "BF16", "U8", ...
    shape: tuple[int, ...]
    start: int  # absolute byte offset in the file
    end: int


class SafetensorsFile:
    """The header of one ``.safetensors`` file and lazy access to its tensors."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            with path.open("rb") as stream:
                raw = stream.read(8)
                if len(raw) != 8:
                    raise StoreError(f"{path.name} is too short to be a safetensors file")
                (length,) = struct.unpack("<Q", raw)
                if length > _MAX_HEADER:
                    raise StoreError(f"{path.name} has an implausible {length:,}-byte header")
                header = json.loads(stream.read(length))
            size = path.stat().st_size
        except (OSError, UnicodeDecodeError, ValueError) as exc:
            raise StoreError(f"cannot read {path.name} as safetensors: {exc}") from exc
        if not isinstance(header, dict):
            raise StoreError(f"{path.name}: the safetensors header is not a JSON object")
        self.metadata: dict[str, str] = header.pop("__metadata__", None) or {}
        base = 8 + length
        self.tensors: dict[str, TensorInfo] = {}
        for name, spec in header.items():
            self.tensors[name] = _tensor_info(path.name, name, spec, base, size)

    def __contains__(self, name: object) -> bool:
        return name in self.tensors

    def __iter__(self) -> Iterator[str]:
        return iter(self.tensors)

    def array(self, name: str) -> np.ndarray[Any, Any]:
        """The tensor's stored values, memory-mapped read-only (BF16 as raw uint16)."""
        info = self.tensors[name]
        count = int(np.prod(info.shape, dtype=np.int64)) if info.shape else 1
        if count == 0:
            return np.zeros(info.shape, dtype=_DTYPES[info.dtype])
        view = np.memmap(
            self.path, dtype=_DTYPES[info.dtype], mode="r", offset=info.start, shape=(count,)
        )
        return view.reshape(info.shape)

    def float32(self, name: str) -> np.ndarray[Any, np.dtype[np.float32]]:
        """The tensor as float32 (a copy), whatever float type it is stored in."""
        info = self.tensors[name]
        values = self.array(name)
        if info.dtype == "BF16":
            return bf16_to_f32(values)
        if info.dtype not in ("F32", "F16", "F64"):
            raise StoreError(f"{self.path.name}: {name} is {info.dtype}, not a float tensor")
        return np.asarray(values, dtype=np.float32)


def bf16_to_f32(raw: np.ndarray[Any, Any]) -> np.ndarray[Any, np.dtype[np.float32]]:
    """bfloat16 bit patterns (uint16) to float32: the high half of a float32 (exact)."""
    widened = np.asarray(raw, dtype=np.uint32) << np.uint32(16)
    return widened.view(np.float32)


def _tensor_info(file: str, name: str, spec: Any, base: int, size: int) -> TensorInfo:
    try:
        dtype = spec["dtype"]
        shape = tuple(int(d) for d in spec["shape"])
        begin, end = (int(x) for x in spec["data_offsets"])
    except (KeyError, TypeError, ValueError):
        raise StoreError(f"{file}: the header entry of {name!r} is malformed") from None
    if dtype not in _DTYPES:
        raise StoreError(f"{file}: {name} has unsupported dtype {dtype!r}")
    count = int(np.prod(shape, dtype=np.int64)) if shape else 1
    expected = count * _DTYPES[dtype].itemsize
    if min(shape, default=1) < 0 or end - begin != expected or begin < 0:
        raise StoreError(f"{file}: {name} has {end - begin} bytes for shape {list(shape)}")
    if base + end > size:
        raise StoreError(f"{file} is truncated: {name} ends past the end of the file")
    return TensorInfo(name, dtype, shape, base + begin, base + end)


def write_safetensors(
    path: Path,
    tensors: Mapping[str, tuple[str, np.ndarray[Any, Any]]],
    metadata: Mapping[str, str] | None = None,
) -> Path:
    """Write ``{name: (safetensors dtype, array)}`` (BF16 given as raw uint16 bits)."""
    header: dict[str, Any] = {}
    if metadata:
        header["__metadata__"] = dict(metadata)
    offset = 0
    blobs = []
    for name, (dtype, array) in tensors.items():
        data = np.ascontiguousarray(array, dtype=_DTYPES[dtype]).tobytes()
        header[name] = {
            "dtype": dtype,
            "shape": list(array.shape),
            "data_offsets": [offset, offset + len(data)],
        }
        blobs.append(data)
        offset += len(data)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)  # the reference writer pads the header to 8 bytes
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("wb") as sink:
        sink.write(struct.pack("<Q", len(text)))
        sink.write(text)
        for blob in blobs:
            sink.write(blob)
    os.replace(tmp, path)
    return path
