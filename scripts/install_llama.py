#!/usr/bin/env python3
"""Build and install llama-cpp-python for THIS machine, with ARIA's flags.

Why a script and not a plain dependency:

* ARIA needs ggml's RPC backend (split inference), so the build must pass
  ``-DGGML_RPC=ON``; PyPI ships llama-cpp-python only as an sdist.
* A plain native build crashes (SIGSEGV) on quantized models on CPUs with AMX as
  soon as a prompt is longer than one token (the AMX repack path). ARIA builds with
  ``GGML_NATIVE=OFF`` and turns on exactly the ISA extensions this CPU has, with the
  three AMX options OFF: the AVX2/AVX-512 repack kernels (about +35% decode on Q4_0)
  stay. On ARM the native build is kept. The flags come from
  ``aria.hardware.buildflags`` so users on other CPUs still get their own best build.
* pip caches wheels by sdist, not by CMAKE_ARGS, so a wheel built with other flags
  could be reused silently. ARIA builds with ``--no-cache-dir`` into its own wheel
  cache keyed by a fingerprint of the flags, and records the fingerprint next to the
  installed package; a mismatch forces a rebuild.

Usage: ``python scripts/install_llama.py [--force] [--check-only]`` with the venv's python.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import sysconfig
from pathlib import Path

LLAMA_CPP_VERSION = "0.3.36"
REPO = Path(__file__).resolve().parent.parent
MARKER = Path(sysconfig.get_paths()["purelib"]) / "aria_llama_build.json"


def _log(message: str) -> None:
    print(f"[install-llama] {message}", flush=True)


def _buildflags(*extra: str) -> str:
    command = [sys.executable, "-m", "aria.hardware.buildflags", *extra]
    return subprocess.run(command, check=True, capture_output=True, text=True, cwd=REPO).stdout


def _build_args() -> tuple[list[str], str]:
    """This CPU's CMake arguments and their wheel-cache fingerprint."""
    args = _buildflags().split()
    return args, _buildflags("--fingerprint", LLAMA_CPP_VERSION).strip()


def _installed_fingerprint() -> str | None:
    try:
        return str(json.loads(MARKER.read_text())["fingerprint"])
    except (OSError, ValueError, KeyError):
        return None


def _wheel_cache(fingerprint: str) -> Path:
    base = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
    return base / "aria" / "llama-wheels" / fingerprint


def _pip(*args: str, env: dict[str, str] | None = None) -> None:
    subprocess.run([sys.executable, "-m", "pip", *args], check=True, env=env)


def _build_wheel(args: list[str], target: Path) -> Path:
    target.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    env["CMAKE_ARGS"] = " ".join(args)
    env.setdefault("CMAKE_BUILD_PARALLEL_LEVEL", str(os.cpu_count() or 2))
    _log(f"building llama-cpp-python {LLAMA_CPP_VERSION} from source (4-6 min on 2 cores)")
    _log(f"CMAKE_ARGS={env['CMAKE_ARGS']}")
    _pip(
        "wheel",
        "--no-cache-dir",  # never reuse a wheel pip cached for other flags
        "--no-deps",
        "--no-binary",
        "llama-cpp-python",
        f"llama-cpp-python=={LLAMA_CPP_VERSION}",
        "-w",
        str(target),
        env=env,
    )
    return _find_wheel(target)


def _find_wheel(directory: Path) -> Path:
    wheels = sorted(directory.glob(f"llama_cpp_python-{LLAMA_CPP_VERSION}-*.whl"))
    if not wheels:
        raise FileNotFoundError(f"no llama-cpp-python wheel in {directory}")
    return wheels[-1]


def install(force: bool) -> None:
    args, fingerprint = _build_args()
    if not force and _installed_fingerprint() == fingerprint:
        _log(f"llama-cpp-python {LLAMA_CPP_VERSION} already built for this CPU ({fingerprint})")
        return
    cache = _wheel_cache(fingerprint)
    try:
        wheel = _find_wheel(cache)
        _log(f"reusing wheel built with the same flags: {wheel.name} ({fingerprint})")
    except FileNotFoundError:
        wheel = _build_wheel(args, cache)
    _pip("install", "--force-reinstall", "--no-deps", "--no-cache-dir", str(wheel))
    _pip("install", "--no-cache-dir", str(wheel))  # its pure-Python deps (jinja2, diskcache)
    MARKER.write_text(json.dumps({"fingerprint": fingerprint, "cmake_args": args}, indent=2))
    _log(f"installed {wheel.name} ({fingerprint})")


def check() -> None:
    """Prove the installed build supports RPC and runs a quantized model (in a child)."""
    result = subprocess.run([sys.executable, "-m", "aria.backends.buildcheck"], check=False)
    if result.returncode != 0:
        raise SystemExit(
            f"llama-cpp-python build check failed (exit {result.returncode}); "
            "rebuild with: python scripts/install_llama.py --force"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--force", action="store_true", help="rebuild even if up to date")
    parser.add_argument("--check-only", action="store_true", help="only run the build check")
    options = parser.parse_args()
    if not options.check_only:
        install(options.force)
    check()


if __name__ == "__main__":
    main()
