"""The CLI edge: errors are one readable line with a stable exit code, never a traceback."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

from aria import __version__
from aria.cli.commands import register
from aria.cli.main import app

register(app)
runner = CliRunner()


def _aria(*args: str, home: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "aria", *args],
        capture_output=True,
        text=True,
        env={"ARIA_HOME": str(home), "PATH": "/usr/bin:/bin"},
        timeout=60,
        check=False,
    )


def test_version() -> None:
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0
    assert __version__ in result.output


def test_profile_set_persists_and_show_marks_it(aria_home: Path) -> None:
    assert runner.invoke(app, ["node", "profile", "set", "balanced"]).exit_code == 0
    assert 'profile = "balanced"' in (aria_home / "config.toml").read_text()
    shown = runner.invoke(app, ["node", "profile", "show"])
    assert shown.exit_code == 0
    assert "* balanced" in shown.output


def test_unknown_profile_is_one_line_without_traceback(aria_home: Path) -> None:
    result = _aria("node", "profile", "set", "turbo", home=aria_home)
    assert result.returncode == 2
    assert result.stderr.strip().startswith("error: unknown profile 'turbo'")
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_broken_config_file_is_one_line(aria_home: Path) -> None:
    (aria_home / "config.toml").write_text("[node\n", encoding="utf-8")
    result = _aria("node", "profile", "show", home=aria_home)
    assert result.returncode == 2
    assert "not valid TOML" in result.stderr
    assert "Traceback" not in result.stderr
