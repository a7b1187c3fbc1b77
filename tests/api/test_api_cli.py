"""``aria api key ...``, ``aria infer`` and ``aria chat`` through the real Typer app."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from aria.apikeys import KeyStore
from aria.cli.commands import register
from aria.cli.main import app
from aria.config import AriaPaths
from aria.errors import ModelNotInstalled
from tests.api.conftest import make_node

register(app)
runner = CliRunner()


def test_key_lifecycle(aria_paths: AriaPaths) -> None:
    created = runner.invoke(app, ["api", "key", "create", "laptop"])
    assert created.exit_code == 0, created.output
    secret = next(word for word in created.output.split() if word.startswith("aria-"))
    assert KeyStore(aria_paths.api).verify(secret)
    listed = runner.invoke(app, ["api", "key", "list"])
    assert "laptop" in listed.output and secret not in listed.output
    assert runner.invoke(app, ["api", "key", "revoke", "laptop"]).exit_code == 0
    assert not KeyStore(aria_paths.api).verify(secret)
    assert "No API keys" in runner.invoke(app, ["api", "key", "list"]).output


@pytest.fixture
def installed(aria_home: Path, model_files: dict[str, Path]) -> None:
    make_node(aria_home, {"tiny": model_files["tiny"]})


def test_infer_json(installed: None) -> None:
    result = runner.invoke(
        app,
        ["infer", "hello", "--model", "tiny", "--json", "--max-tokens", "6", "--temperature", "0"],
    )
    assert result.exit_code == 0, result.output
    answer = json.loads(result.stdout.strip().splitlines()[-1])
    assert answer["model"] == "tiny" and answer["tier"] == "quality"
    assert answer["usage"]["completion_tokens"] == 6 and answer["text"]
    assert answer["finish_reason"] == "length"


def test_infer_streams_text(installed: None) -> None:
    plain = runner.invoke(
        app, ["infer", "hello", "-m", "tiny", "--max-tokens", "6", "--temperature", "0"]
    )
    as_json = runner.invoke(
        app, ["infer", "hello", "-m", "tiny", "--max-tokens", "6", "--temperature", "0", "--json"]
    )
    text = json.loads(as_json.stdout.strip().splitlines()[-1])["text"]
    assert plain.exit_code == 0 and text in plain.stdout


def test_chat_keeps_the_conversation_until_exit(installed: None) -> None:
    result = runner.invoke(
        app,
        ["chat", "-m", "tiny", "--max-tokens", "5"],
        input="hello\nand again\n/exit\nnever read\n",
    )
    assert result.exit_code == 0, result.output
    # two answers, then /exit (the untrained model may end an answer before 5 tokens)
    assert result.output.count("tiny · quality · ") == 2


def test_chat_ends_on_eof(installed: None) -> None:
    result = runner.invoke(app, ["chat", "-m", "tiny", "--max-tokens", "3"], input="hi\n")
    assert result.exit_code == 0 and "tiny · quality" in result.output


def test_missing_model_is_one_clear_line(aria_paths: AriaPaths) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "aria", "infer", "hello"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == ModelNotInstalled.exit_code
    assert result.stderr.strip().splitlines() == [
        "error: SmolLM2-135M-Instruct is not installed; run "
        "`aria model download SmolLM2-135M-Instruct`"
    ]


def test_api_start_off_loopback_without_keys_is_one_line(aria_home: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "aria", "api", "start", "--host", "0.0.0.0", "--port", "0"],
        capture_output=True,
        text=True,
        env={**os.environ, "ARIA_HOME": str(aria_home)},
        timeout=120,
        check=False,
    )
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    assert "error:" in result.stderr and "key" in result.stderr
