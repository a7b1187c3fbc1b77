"""llama.cpp CMake flags for the CPU at hand, and a fingerprint to key the wheel cache.

Run ``python -m aria.hardware.buildflags`` to print the flags for this machine on one
line (``--fingerprint VERSION`` prints the cache key instead). The install script runs
it before ARIA's dependencies are installed, so this module imports only the standard
library (plus ``aria.hardware.cpu`` and ``aria.errors``, which do the same).
"""

from __future__ import annotations

import argparse
import hashlib
import platform
import subprocess
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Final, Protocol

from aria.errors import HardwareError
from aria.hardware.cpu import read_cpu

__all__ = ["CpuFeatures", "build_fingerprint", "llama_cmake_args", "main"]

_AVX512_BASE: Final = ("avx512f", "avx512cd", "avx512dq", "avx512bw", "avx512vl")

# CMake option -> CPU features it compiles in. GGML_AVX512 passes -mavx512f/cd/vl/dq/bw,
# so it (and every AVX-512 extension built on it) needs all five.
_X86_OPTIONS: Final[tuple[tuple[str, tuple[str, ...]], ...]] = (
    ("GGML_SSE42", ("sse4_2",)),
    ("GGML_AVX", ("avx",)),
    ("GGML_AVX2", ("avx2",)),
    ("GGML_BMI2", ("bmi2",)),
    ("GGML_FMA", ("fma",)),
    ("GGML_F16C", ("f16c",)),
    ("GGML_AVX_VNNI", ("avx_vnni",)),
    ("GGML_AVX512", _AVX512_BASE),
    ("GGML_AVX512_VBMI", (*_AVX512_BASE, "avx512_vbmi")),
    ("GGML_AVX512_VNNI", (*_AVX512_BASE, "avx512_vnni")),
    ("GGML_AVX512_BF16", (*_AVX512_BASE, "avx512_bf16")),
)
_AMX_OPTIONS: Final = ("GGML_AMX_TILE", "GGML_AMX_INT8", "GGML_AMX_BF16")


class CpuFeatures(Protocol):
    """What the flags depend on; ``CpuInfo`` and ``CpuFacts`` both fit."""

    @property
    def arch(self) -> str: ...

    @property
    def features(self) -> frozenset[str]: ...


def llama_cmake_args(cpu: CpuFeatures) -> list[str]:
    """CMake arguments that build llama.cpp fast *and* safe for ``cpu``.

    - ``GGML_RPC=ON`` always: split inference lends layers to peers over ggml-rpc.
    - x86_64: ``GGML_NATIVE=OFF`` with every ISA option spelled out, ON exactly when the
      CPU has the features it compiles in. A native build (``-march=native``) on a CPU
      with AMX also compiles ggml's AMX repack path, which segfaults on quantized models
      (Q4_1, Q8_0, Q4_K) as soon as a prompt is longer than one token; the three AMX
      options are therefore always OFF. The AVX2/AVX-512 repack kernels stay, and they
      are worth about +35% decode on Q4_0. Options are never left to their defaults:
      with NATIVE off, ggml turns SSE4.2/AVX/AVX2/BMI2/FMA/F16C ON by default, which
      would crash (SIGILL) on a CPU without them.
    - Arm (aarch64/arm64) and other ISAs: ``GGML_NATIVE=ON``; no crash is known there,
      and native picks NEON dot-product, i8mm and SVE where present.
    """
    args = ["-DGGML_RPC=ON"]
    if cpu.arch != "x86_64":
        return [*args, "-DGGML_NATIVE=ON"]
    args.append("-DGGML_NATIVE=OFF")
    for option, needed in _X86_OPTIONS:
        enabled = all(feature in cpu.features for feature in needed)
        args.append(f"-D{option}={'ON' if enabled else 'OFF'}")
    args.extend(f"-D{option}=OFF" for option in _AMX_OPTIONS)
    return args


def build_fingerprint(args: Iterable[str], *, llama_cpp_version: str) -> str:
    """A short key for a built wheel: same flags and version, same key.

    pip caches wheels built from an sdist by the sdist alone, ignoring ``CMAKE_ARGS``,
    so the installer keeps its own cache keyed by this fingerprint (order-insensitive).
    """
    payload = "\n".join([f"llama-cpp-python=={llama_cpp_version}", *sorted(args)])
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()[:16]


def main(argv: Sequence[str] | None = None) -> int:
    """Print this machine's llama.cpp CMake arguments (or their fingerprint)."""
    parser = argparse.ArgumentParser(
        prog="python -m aria.hardware.buildflags",
        description="Print llama.cpp CMake arguments for this machine's CPU on one line.",
    )
    parser.add_argument(
        "--fingerprint",
        metavar="LLAMA_CPP_VERSION",
        help="print the wheel-cache key for these arguments and that llama-cpp-python version",
    )
    options = parser.parse_args(argv)
    try:
        cpu = read_cpu(
            root=Path("/"),
            run=subprocess.run,
            system=platform.system(),
            machine=platform.machine(),
        )
    except HardwareError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        return exc.exit_code
    args = llama_cmake_args(cpu)
    if options.fingerprint:
        print(build_fingerprint(args, llama_cpp_version=options.fingerprint))
    else:
        print(" ".join(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
