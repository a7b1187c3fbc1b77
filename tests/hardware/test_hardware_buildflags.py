"""llama.cpp build flags: safe on AMX, native on Arm, and usable before ARIA is installed."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from aria.hardware import build_fingerprint, detect, llama_cmake_args
from aria.hardware.buildflags import main
from aria.hardware.cpu import CpuFacts

REPO = Path(__file__).resolve().parents[2]


def _cpu(arch: str, *features: str) -> CpuFacts:
    return CpuFacts("test", "test CPU", arch, 4, 8, frozenset(features))


def _switches(args: list[str]) -> dict[str, str]:
    return dict(arg.removeprefix("-D").split("=") for arg in args)


def test_an_old_x86_cpu_gets_every_extension_off() -> None:
    switches = _switches(llama_cmake_args(_cpu("x86_64", "sse4_2")))
    assert switches.pop("GGML_RPC") == "ON"
    assert switches.pop("GGML_NATIVE") == "OFF"
    assert switches.pop("GGML_SSE42") == "ON"
    assert set(switches.values()) == {"OFF"}  # nothing left to ggml's (AVX2-on) defaults


def test_avx512_needs_all_five_base_extensions() -> None:
    # Knights Landing style: AVX-512 F/CD without BW/VL/DQ; -mavx512bw would crash there.
    switches = _switches(
        llama_cmake_args(_cpu("x86_64", "avx2", "avx512f", "avx512cd", "avx512_vnni"))
    )
    assert switches["GGML_AVX2"] == "ON"
    assert switches["GGML_AVX512"] == "OFF"
    assert switches["GGML_AVX512_VNNI"] == "OFF"


@pytest.mark.parametrize("arch", ["aarch64", "arm64"])
def test_arm_builds_native(arch: str) -> None:
    assert llama_cmake_args(_cpu(arch, "neon", "dotprod", "sve")) == [
        "-DGGML_RPC=ON",
        "-DGGML_NATIVE=ON",
    ]


def test_amx_stays_off_whatever_the_cpu_has() -> None:
    switches = _switches(llama_cmake_args(_cpu("x86_64", "amx_tile", "amx_int8", "amx_bf16")))
    assert [switches[f"GGML_AMX_{kind}"] for kind in ("TILE", "INT8", "BF16")] == ["OFF"] * 3


def test_fingerprint_keys_on_the_flag_set_and_the_version() -> None:
    args = ["-DGGML_RPC=ON", "-DGGML_NATIVE=OFF", "-DGGML_AVX2=ON"]
    key = build_fingerprint(args, llama_cpp_version="0.3.36")
    assert len(key) == 16 and int(key, 16) >= 0
    assert build_fingerprint(list(reversed(args)), llama_cpp_version="0.3.36") == key
    assert build_fingerprint(args, llama_cpp_version="0.3.37") != key
    other = ["-DGGML_RPC=ON", "-DGGML_NATIVE=OFF", "-DGGML_AVX2=OFF"]
    assert build_fingerprint(other, llama_cpp_version="0.3.36") != key


def test_main_prints_the_flags_of_this_machine(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 0
    line = capsys.readouterr().out
    assert line.count("\n") == 1
    assert line.split() == llama_cmake_args(detect().cpu)  # stdlib path agrees with the snapshot
    assert main(["--fingerprint", "0.3.36"]) == 0
    expected = build_fingerprint(line.split(), llama_cpp_version="0.3.36")
    assert capsys.readouterr().out.strip() == expected


_WITHOUT_DEPENDENCIES = """
import importlib.abc, runpy, sys

MISSING = {"pydantic", "pydantic_core", "psutil", "typer", "rich", "cpuinfo", "numpy"}

class NotInstalled(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in MISSING:
            raise ImportError(f"{name} is not installed")
        return None

sys.meta_path.insert(0, NotInstalled())
sys.argv = ["buildflags"]
runpy.run_module("aria.hardware.buildflags", run_name="__main__")
"""


def test_runs_with_the_standard_library_only() -> None:
    """The install script calls it before ARIA's dependencies are installed."""
    result = subprocess.run(
        [sys.executable, "-c", _WITHOUT_DEPENDENCIES],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("-DGGML_RPC=ON -DGGML_NATIVE=")
