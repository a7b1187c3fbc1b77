"""``aria hardware info``: JSON for scripts, a readable table for people."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

from aria.cli.hardware import app
from aria.hardware import HardwareSnapshot, detect

runner = CliRunner()


def test_json_output_is_the_snapshot_plus_advice() -> None:
    result = runner.invoke(app, ["info", "--json"])
    assert result.exit_code == 0, result.output
    payload = json.loads(result.output)
    snapshot = HardwareSnapshot.model_validate(payload["snapshot"])
    assert snapshot.cpu == detect().cpu
    assert {a["subject"] for a in payload["advice"]} >= {"efficiency", "quality", "accelerated"}
    assert set(payload["recommended_threads"]) == {"1B", "3B", "7B"}
    assert payload["memory_budget_bytes"] >= 0


def test_text_output_names_the_cpu_and_the_tiers() -> None:
    result = runner.invoke(app, ["info"])
    assert result.exit_code == 0, result.output
    assert detect().cpu.model in result.output
    assert "Recommended decode threads: 1B" in result.output
    assert "accelerated" in result.output


def test_the_aria_command_has_the_hardware_group(aria_home: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "aria", "hardware", "info", "--json"],
        capture_output=True,
        text=True,
        env={"ARIA_HOME": str(aria_home), "PATH": "/usr/bin:/bin"},
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["snapshot"]["os"]
