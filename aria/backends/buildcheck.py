"""Prove the installed llama-cpp-python build is one ARIA can rely on.

Run as ``python -m aria.backends.buildcheck`` (the installer does, and ``aria doctor``
reports the same facts). It checks that the build has ggml's RPC backend (needed for
split inference) and that a quantized model runs a multi-token prompt without
crashing. That second check runs in a child process: the known failure (the AMX
repack path of a native build) is a SIGSEGV, which must become a readable message,
not a dead installer.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal

__all__ = ["BuildReport", "check_build"]

_QUANTS: tuple[Literal["Q8_0", "Q4_0"], ...] = ("Q8_0", "Q4_0")
_PROMPT = "The quick brown fox jumps over the lazy dog because"


@dataclass(frozen=True)
class BuildReport:
    version: str
    supports_rpc: bool
    system_info: str
    quantized_ok: bool
    detail: str

    @property
    def ok(self) -> bool:
        return self.supports_rpc and self.quantized_ok


def _probe(model: Path) -> None:
    """Child process: load a quantized model and evaluate a multi-token prompt."""
    import llama_cpp

    llm = llama_cpp.Llama(str(model), n_ctx=256, n_threads=2, verbose=False)
    out = llm.create_completion(_PROMPT, max_tokens=4, temperature=0.0, stream=False)
    assert isinstance(out, dict)  # stream=False always returns one response
    print(json.dumps({"tokens": out["usage"]["completion_tokens"]}))


def _run_probe(model: Path) -> str | None:
    """Return None when the probe succeeded, else a sentence saying how it failed."""
    child = subprocess.run(
        [sys.executable, "-m", "aria.backends.buildcheck", "--probe", str(model)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    if child.returncode == 0:
        return None
    if child.returncode < 0:
        name = signal.Signals(-child.returncode).name
        return f"crashed with {name} on a multi-token prompt (a native AMX build does this)"
    tail = (child.stderr.strip().splitlines() or ["no output"])[-1]
    return f"failed with exit code {child.returncode}: {tail}"


def check_build() -> BuildReport:
    """Inspect the installed llama-cpp-python and run the quantized-model probe."""
    import llama_cpp

    from aria.convert.synthetic import write_llama_gguf

    failures = []
    with tempfile.TemporaryDirectory(prefix="aria-buildcheck-") as tmp:
        for quant in _QUANTS:
            model = write_llama_gguf(Path(tmp) / f"probe-{quant}.gguf", quant=quant)
            problem = _run_probe(model)
            if problem is not None:
                failures.append(f"{quant}: {problem}")
    return BuildReport(
        version=llama_cpp.__version__,
        supports_rpc=bool(llama_cpp.llama_supports_rpc()),
        system_info=llama_cpp.llama_print_system_info().decode().strip(),
        quantized_ok=not failures,
        detail="; ".join(failures) or f"quantized models ({', '.join(_QUANTS)}) run",
    )


def main(argv: list[str]) -> int:
    if len(argv) == 2 and argv[0] == "--probe":
        _probe(Path(argv[1]))
        return 0
    report = check_build()
    print(json.dumps({**asdict(report), "ok": report.ok}, indent=2))
    if not report.supports_rpc:
        print("llama-cpp-python was built without GGML_RPC", file=sys.stderr)
    if not report.quantized_ok:
        print(f"quantized model check failed: {report.detail}", file=sys.stderr)
    return 0 if report.ok else 1


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
