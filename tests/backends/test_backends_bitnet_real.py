"""The bitnet.cpp engine against the REAL bitnet.cpp server, when this machine has built one
(`aria engine install bitnet`); skipped with the reason otherwise (CI and ARIA's development
machines cannot reach GitHub, so the stand-in server of test_backends_bitnet.py covers CI)."""

from __future__ import annotations

from pathlib import Path

import platformdirs
import pytest

from aria.backends import find_bitnet_server
from aria.convert.synthetic import write_llama_gguf
from aria.engines.bitnet import verify_server


def _built_server() -> Path | None:
    home = Path(platformdirs.user_data_dir("aria", "aria"))
    built = sorted((home / "cache" / "engines" / "bitnet").glob("*/bin/bitnet-llama-server"))
    return built[-1] if built else find_bitnet_server(None)


SERVER = _built_server()
pytestmark = pytest.mark.skipif(
    SERVER is None,
    reason="no bitnet.cpp server is built on this machine (`aria engine install bitnet` "
    "needs GitHub and clang >= 18); the stand-in server covers the engine in CI",
)


def test_the_real_server_serves_a_generated_model(tmp_path: Path) -> None:
    assert SERVER is not None
    text = verify_server(SERVER, write_llama_gguf(tmp_path / "tiny.gguf", quant="F16"))
    assert isinstance(text, str)
