"""``--json`` on every command that shows state: each output parses, and has the shape
``docs/cli.md`` documents; tables are not cut to 80 columns when stdout is a pipe."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from aria.cli.commands import register
from aria.cli.main import app
from aria.config import AriaPaths
from aria.convert.synthetic import write_llama_gguf

register(app)
runner = CliRunner()

MODEL_KEYS = {
    "id",
    "name",
    "family",
    "tier",
    "architecture",
    "params_b",
    "quantization",
    "licence",
    "licence_class",
    "context_length",
    "capabilities",
    "memory",
    "native_1bit",
    "size_bytes",
    "catalog_sha256",
    "source",
    "runs_here",
    "installed",
}
INSTALLED_KEYS = {
    "path",
    "size_bytes",
    "sha256",
    "hash_source",
    "verified_at",
    "origin",
    "licence_accepted",
}


def run_json(*args: str) -> Any:
    result = runner.invoke(app, [*args, "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


@pytest.fixture
def imported(aria_paths: AriaPaths, tmp_path: Path) -> Path:
    source = write_llama_gguf(tmp_path / "little.gguf", n_ctx=512)
    result = runner.invoke(app, ["model", "import", str(source), "--id", "little"])
    assert result.exit_code == 0, result.output
    return source


def test_model_list(imported: Path) -> None:
    (model,) = run_json("model", "list")["models"]
    assert set(model) == MODEL_KEYS and set(model["installed"]) == INSTALLED_KEYS
    assert model["id"] == "little" and model["installed"]["origin"] == "import"
    assert model["source"]["kind"] == "local"
    every = run_json("model", "list", "--all")["models"]
    assert {m["id"] for m in every} >= {"little", "SmolLM2-135M-Instruct"}
    catalog_only = next(m for m in every if m["id"] == "SmolLM2-135M-Instruct")
    assert catalog_only["installed"] is None and catalog_only["source"]["kind"] == "wheel"


def test_model_list_when_empty(aria_paths: AriaPaths) -> None:
    assert run_json("model", "list") == {"models": []}


def test_model_info(imported: Path) -> None:
    model = run_json("model", "info", "little")["model"]
    assert set(model) == MODEL_KEYS
    assert model["installed"]["size_bytes"] == imported.stat().st_size
    assert len(model["installed"]["sha256"]) == 64
    catalog = run_json("model", "info", "SmolLM2-135M-Instruct")["model"]
    assert catalog["installed"] is None and catalog["licence_class"] == "green"


def test_model_verify(imported: Path, aria_paths: AriaPaths) -> None:
    report = run_json("model", "verify")
    assert report["failed"] == 0
    assert [(r["id"], r["ok"]) for r in report["results"]] == [("little", True)]
    stored = aria_paths.models / "little" / "little.gguf"
    stored.write_bytes(stored.read_bytes()[::-1])
    failed = runner.invoke(app, ["model", "verify", "--json"])
    assert failed.exit_code != 0  # still a failure for scripts that check the status
    assert json.loads(failed.stdout)["failed"] == 1


def test_node_profile_show() -> None:
    shown = run_json("node", "profile", "show")
    assert shown["active"] == "efficient" and isinstance(shown["gpu"], bool)
    names = [p["name"] for p in shown["profiles"]]
    assert "balanced" in names and [p["active"] for p in shown["profiles"]].count(True) == 1
    assert all(isinstance(p["tiers"], list) for p in shown["profiles"])


def test_node_share() -> None:
    consent = run_json("node", "share")
    assert consent["share_inference"] is False and consent["use_peers"] is False
    assert set(consent) == {
        "share_inference",
        "use_peers",
        "max_remote_jobs",
        "max_remote_tokens",
        "share_rpc",
        "rpc_memory_gb",
        "rpc_peers",
        "rpc_min_reputation",
        "rpc_idle_timeout_s",
        "rpc_session_max_s",
        "rpc_session_max_gb",
        "share_library",
        "library_max_uploads",
        "library_upload_mbps",
        "library_peer_mbps",
        "library_peer_gb_per_day",
        "contract",
        "running_node",
    }
    assert consent["contract"]["version"] == 1 and len(consent["contract"]["sha256"]) == 64
    assert consent["running_node"] is None  # nothing changed, so nothing was sent
    changed = run_json("node", "share", "--inference", "on")
    assert changed["share_inference"] is True and changed["contract"]["version"] == 2
    assert changed["running_node"] is None  # saved; no node runs in this test
    assert consent["share_library"] is False
    library = run_json("node", "share", "--library", "on")
    assert library["share_library"] is True and library["share_inference"] is True
    assert library["contract"]["version"] == 3


def test_api_key_create_and_list(aria_paths: AriaPaths) -> None:
    assert run_json("api", "key", "list") == {"keys": []}
    created = run_json("api", "key", "create", "script")
    assert set(created) == {"id", "name", "hint", "created", "memory", "key"}
    assert created["memory"] is False  # memory over the API is off until the operator says
    assert created["key"].startswith("aria-") and created["key"].startswith(
        created["hint"].removesuffix("...")
    )
    (listed,) = run_json("api", "key", "list")["keys"]
    assert listed == {k: created[k] for k in ("id", "name", "hint", "created", "memory")}


def test_tables_are_not_cut_to_80_columns_in_a_pipe(imported: Path, aria_home: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "COLUMNS"}
    result = subprocess.run(
        [sys.executable, "-m", "aria", "model", "list", "--all"],
        capture_output=True,
        text=True,
        env={**env, "ARIA_HOME": str(aria_home)},
        timeout=60,
        check=True,
    )
    lines = result.stdout.splitlines()
    assert max(len(line) for line in lines) > 80
    assert "…" not in result.stdout  # no id or licence shortened
    assert any("SmolLM2-135M-Instruct" in line and "Apache-2.0 (green)" in line for line in lines)


LIBRARY_ENTRY_KEYS = {
    "model_id",
    "sha256",
    "size_bytes",
    "licence",
    "published",
    "shareable",
    "refusal",
    "chunks",
}


def test_library_without_a_node(imported: Path) -> None:
    (entry,) = run_json("library", "list")["models"]
    assert set(entry) == LIBRARY_ENTRY_KEYS and entry["model_id"] == "little"
    assert not entry["published"] and entry["chunks"] is None
    assert entry["shareable"] and entry["licence"] == "Apache-2.0"  # the generated model's
    published = run_json("library", "publish", "little")
    assert published == {
        "model_id": "little",
        "sha256": entry["sha256"],
        "chunks": 1,
        "published": True,
        "sharing": False,
        "node_running": False,
    }
    status = run_json("library", "status")
    assert status["published"] == 1 and status["node_running"] is False
    assert set(status) >= {"sharing", "uploads_active", "max_uploads", "served_bytes", "fetching"}
    assert run_json("library", "unpublish", "little") == {
        "model_id": "little",
        "published": False,
        "changed": True,
    }
