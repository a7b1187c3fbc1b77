"""`aria model list/info/download` say which 1-bit models can run on this node, and why."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

from aria.cli.commands import register
from aria.cli.main import app
from aria.config import AriaPaths
from aria.errors import ModelCannotRun
from tests.helpers.hubserver import HubServer

register(app)
runner = CliRunner()
WIDE = {"COLUMNS": "400"}


def _row(output: str, model_id: str) -> str:
    return next(line for line in output.splitlines() if f" {model_id} " in line)


def test_a_fresh_node_shows_which_1bit_models_run_here() -> None:
    result = runner.invoke(app, ["model", "list", "--all"], env=WIDE)
    assert result.exit_code == 0, result.output
    bitnet = _row(result.output, "BitNet-b1.58-2B-4T")
    assert "no: I2_S is bitnet.cpp's format" in bitnet and "aria engine install bitnet" in bitnet
    for converted in ("Falcon3-1B-Instruct-1.58bit", "Falcon-E-3B-Instruct"):
        assert "yes, llama.cpp" in _row(result.output, converted)
    assert "yes, llama.cpp" in _row(result.output, "SmolLM2-135M-Instruct")


def test_download_refuses_a_model_no_engine_here_can_run(hub: HubServer) -> None:
    result = runner.invoke(app, ["model", "download", "BitNet-b1.58-2B-4T"], env=WIDE)
    assert isinstance(result.exception, ModelCannotRun)
    assert "aria engine install bitnet" in result.exception.message
    assert "--anyway" in result.exception.message
    assert hub.hits == []  # refused before any request
    done = subprocess.run(
        [sys.executable, "-m", "aria", "model", "download", "BitNet-b1.58-2B-4T"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == ModelCannotRun.exit_code
    assert done.stderr.strip().count("\n") == 0
    assert done.stderr.startswith("error: BitNet-b1.58-2B-4T cannot run on this node")


def test_anyway_downloads_regardless(hub: HubServer) -> None:
    result = runner.invoke(app, ["model", "download", "BitNet-b1.58-2B-4T", "--anyway"], env=WIDE)
    assert "cannot run on this node" not in result.output
    assert any(h.path.startswith("/microsoft/bitnet-b1.58-2B-4T-gguf/") for h in hub.hits)


def test_with_bitnet_cpp_registered_the_model_runs_there(
    aria_paths: AriaPaths, tmp_path: Path
) -> None:
    server = tmp_path / "llama-server"
    server.write_text("#!/bin/sh\nexit 0\n")
    server.chmod(server.stat().st_mode | stat.S_IXUSR)
    aria_paths.config_file.write_text(f'[inference]\nbitnet_server = "{server}"\n')
    result = runner.invoke(app, ["model", "info", "BitNet-b1.58-2B-4T"], env=WIDE)
    assert result.exit_code == 0, result.output
    assert "yes, bitnet.cpp" in result.output
    assert os.environ.get("ARIA_HOME") == str(aria_paths.home)
