"""``aria route``: the explanation in text and JSON, with the real store and the override."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import typer
from typer.testing import CliRunner

from aria.catalog import load_catalog, load_denylist
from aria.cli.route import register
from aria.config import AriaPaths
from aria.errors import ConfigError, InvalidRequest
from aria.store import ModelStore

app = typer.Typer()


@app.callback()
def _root() -> None:
    """A root like ``aria``'s, so ``route`` is a subcommand."""


register(app)
runner = CliRunner()


def install_local_model(paths: AriaPaths, tmp_path: Path, model_id: str) -> None:
    """Import a tiny green GGUF into the real store (quality tier, 4096-token window)."""
    from gguf import GGUFWriter, LlamaFileType

    path = tmp_path / f"{model_id}.gguf"
    writer = GGUFWriter(path, "llama")
    writer.add_name(model_id)
    writer.add_license("apache-2.0")
    writer.add_context_length(4096)
    writer.add_file_type(LlamaFileType.ALL_F32)
    writer.add_tensor("token_embd.weight", np.zeros((8, 32), dtype=np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    ModelStore(paths, load_catalog(), load_denylist()).import_file(path, model_id=model_id)


def test_text_output_explains_category_model_reason_and_chain(aria_paths: AriaPaths) -> None:
    result = runner.invoke(app, ["route", "How do I reverse a list in Python?", "-p", "balanced"])
    assert result.exit_code == 0, result.output
    out = result.output
    assert "category   code" in out
    assert "profile    balanced (tiers: efficiency, quality" in out
    assert "not installed" in out
    assert "SmolLM2-135M-Instruct (quality, last resort)" in out
    assert "notice" in out


def test_json_output_marks_installed_models(aria_paths: AriaPaths, tmp_path: Path) -> None:
    install_local_model(aria_paths, tmp_path, "my-local")
    rows = "".join(
        f'[categories.{c}]\ndefault = ["my-local", "Qwen3-4B"]\n'
        for c in ("chat", "code", "math", "reasoning", "multilingual")
    )
    (aria_paths.home / "routing.toml").write_text(rows)
    result = runner.invoke(app, ["route", "Tell me a joke about penguins.", "--json", "-p", "full"])
    assert result.exit_code == 0, result.output
    decision = json.loads(result.output)
    assert decision["model"] == "my-local"
    assert (
        decision["reason"]
        == "my-local is the first installed model of the chat row for profile full"
    )
    assert decision["notice"] is None
    chain = decision["chain"]
    assert [link["model"] for link in chain] == ["my-local", "SmolLM2-135M-Instruct"]
    assert chain[0]["installed"] is True
    assert chain[-1] == {
        "model": "SmolLM2-135M-Instruct",
        "where": "local",
        "peer_id": None,
        "tier": "quality",
        "installed": False,
        "native_1bit": False,
        "last_resort": True,
    }
    assert decision["tiers"][:3] == ["efficiency", "quality", "specialist"]
    assert sum(decision["text_scores"].values()) == pytest.approx(1.0, abs=1e-3)


def test_image_and_tools_flags_take_the_structural_paths(aria_paths: AriaPaths) -> None:
    vision = json.loads(runner.invoke(app, ["route", "what is this?", "--image", "--json"]).output)
    assert (vision["category"], vision["confidence"]) == ("vision", 1.0)
    tools = json.loads(
        runner.invoke(
            app, ["route", "weather in Oslo", "--tools", "--json", "-p", "minimal"]
        ).output
    )
    assert tools["category"] == "tool_use"
    assert not any(link["native_1bit"] for link in tools["chain"])


def test_the_node_profile_is_the_default(aria_paths: AriaPaths) -> None:
    aria_paths.config_file.write_text('[node]\nprofile = "minimal"\n')
    decision = json.loads(runner.invoke(app, ["route", "hello", "--json"]).output)
    assert decision["profile"] == "minimal"
    assert decision["tiers"] == ["efficiency"]


def test_bad_input_raises_the_errors_the_root_prints(aria_paths: AriaPaths) -> None:
    empty = runner.invoke(app, ["route", "   "])
    assert isinstance(empty.exception, InvalidRequest)
    (aria_paths.home / "routing.toml").write_text('[categories.code]\ndefault = ["Qwen9-1T"]\n')
    typo = runner.invoke(app, ["route", "print hello in C"])
    assert isinstance(typo.exception, ConfigError)
    assert "unknown model" in typo.exception.message


def test_the_aria_command_routes_and_errors_in_one_line(aria_home: Path) -> None:
    def aria(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "aria", "route", *args],
            capture_output=True,
            text=True,
            env={"ARIA_HOME": str(aria_home), "PATH": "/usr/bin:/bin"},
            timeout=60,
            check=False,
        )

    ok = aria("Résous 2x + 3 = 11", "--json")
    assert ok.returncode == 0, ok.stderr
    assert json.loads(ok.stdout)["category"] == "math"
    bad = aria("hi", "--profile", "turbo")
    assert bad.returncode == 2
    assert bad.stderr.strip().splitlines() == [
        "error: unknown profile 'turbo'; choose one of: minimal, efficient, balanced, full, "
        "specialist_only"
    ]
