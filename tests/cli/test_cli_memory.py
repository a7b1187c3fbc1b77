"""``aria memory`` and memory in ``aria chat``: real commands, one-line errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from aria.catalog import load_catalog, load_denylist
from aria.cli.commands import register
from aria.cli.main import app
from aria.config import AriaPaths
from aria.convert import write_llama_gguf
from aria.store import ModelStore

register(app)
runner = CliRunner()


def _aria(home: Path, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "aria", *args],
        input=stdin, capture_output=True, text=True, timeout=120, check=False,
        env={"ARIA_HOME": str(home), "PATH": "/usr/bin:/bin", "COLUMNS": "200"},
    )  # fmt: skip


def _json(*args: str) -> object:
    result = runner.invoke(app, [*args, "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def test_add_list_search_forget(aria_home: Path) -> None:
    added = _json("memory", "add", "I play the cello")
    assert isinstance(added, dict) and added["memory"]["kind"] == "semantic"
    instruction = _json("memory", "add", "answer in French")
    assert isinstance(instruction, dict) and instruction["memory"]["kind"] == "procedural"
    listed = _json("memory", "list")["memories"]  # type: ignore[index]
    assert [m["text"] for m in listed] == ["answer in French", "I play the cello"]
    found = _json("memory", "search", "cello")["hits"]  # type: ignore[index]
    assert [h["text"] for h in found][:1] == ["I play the cello"]
    gone = _json("memory", "forget", added["memory"]["id"])
    assert gone == {"deleted": [added["memory"]["id"]]}
    assert runner.invoke(app, ["memory", "list"]).exit_code == 0


def test_export_import_and_reminders(aria_home: Path, tmp_path: Path) -> None:
    _json("memory", "add", "I live in Lyon")
    reminder = _json("memory", "remind", "tomorrow at 9 call the bank")["reminder"]  # type: ignore[index]
    assert reminder["text"] == "call the bank"
    reminders = _json("memory", "reminders")["reminders"]  # type: ignore[index]
    assert [r["id"] for r in reminders] == [reminder["id"]]
    target = tmp_path / "export.json"
    assert runner.invoke(app, ["memory", "export", str(target)]).exit_code == 0
    assert target.stat().st_mode & 0o077 == 0
    assert _json("memory", "forget", "--all", "--yes") == {"deleted": 2}
    assert _json("memory", "import", str(target)) == {"memories": 1, "reminders": 1, "skipped": 0}


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (("memory", "list", "--kind", "dreams"), 2, "--kind must be one of"),
        (("memory", "forget", "m_000000000000"), 8, "no memory or reminder has the id"),
        (("memory", "forget"), 2, "name the ids to forget"),
        (("memory", "forget", "--all"), 2, "add --yes"),
        (("memory", "import", "/nonexistent.json"), 2, "cannot read"),
        (("memory", "remind", "buy milk"), 2, "no time, event or model download"),
        (("memory", "search", "x", "--mode", "psychic"), 2, "--mode must be"),
        (("memory", "list", "--user", "../etc"), 2, "not a memory user"),
    ],
)
def test_bad_input_is_one_line(
    aria_home: Path, args: tuple[str, ...], code: int, message: str
) -> None:
    result = _aria(aria_home, *args)
    assert result.returncode == code, result.stderr
    assert result.stderr.strip().startswith("error:") and message in result.stderr
    assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_the_operator_switches(aria_home: Path) -> None:
    assert "on" in runner.invoke(app, ["memory", "api", "on"]).output
    assert "api = true" in (aria_home / "config.toml").read_text()
    assert runner.invoke(app, ["api", "key", "create", "phone"]).exit_code == 0
    assert "memory on" in runner.invoke(app, ["api", "key", "memory", "phone", "on"]).output
    keys = json.loads((aria_home / "api" / "keys.json").read_text())["keys"]
    assert keys[0]["memory"] is True
    disabled = _aria(aria_home, "memory", "list")
    assert disabled.returncode == 0
    (aria_home / "config.toml").write_text("[memory]\nenabled = false\n")
    off = _aria(aria_home, "memory", "list")
    assert off.returncode == 8 and "memory is turned off" in off.stderr


@pytest.mark.slow
def test_chat_remembers_unless_told_not_to(aria_home: Path, tmp_path: Path) -> None:
    store = ModelStore(AriaPaths(aria_home), load_catalog(), load_denylist())
    store.import_file(write_llama_gguf(tmp_path / "tiny.gguf", n_ctx=2048), model_id="tiny")
    chat = _aria(aria_home, "chat", "-m", "tiny", "--max-tokens", "4",
                 stdin="Remember that I play the cello\nWhat do I play?\n/exit\n")  # fmt: skip
    assert chat.returncode == 0, chat.stderr
    assert "memory: Saved to memory: I play the cello" in chat.stdout
    assert "memories used" in chat.stdout
    listed = json.loads(_aria(aria_home, "memory", "list", "--json").stdout)["memories"]
    texts = [m["text"] for m in listed]
    assert "I play the cello" in texts and "What do I play?" in texts
    private = _aria(aria_home, "chat", "-m", "tiny", "--no-memory", "--max-tokens", "2",
                    stdin="Remember that I live in Oslo\n/exit\n")  # fmt: skip
    assert private.returncode == 0 and "Memory is off" in private.stdout
    listed = json.loads(_aria(aria_home, "memory", "list", "--json").stdout)["memories"]
    assert not any("Oslo" in m["text"] for m in listed)
