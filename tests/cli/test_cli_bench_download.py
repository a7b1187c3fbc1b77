"""``aria bench`` never reaches the network by itself."""

from __future__ import annotations

from typer.testing import CliRunner

from aria.cli.commands import register
from aria.cli.main import app


def test_bench_without_the_default_model_asks_instead_of_downloading() -> None:
    register(app)
    result = CliRunner().invoke(app, ["bench"], input="")
    assert result.exit_code == 1
    assert "is not installed" in result.output and "aria model download" in result.output
