"""The list of command groups; each module owns its commands."""

from __future__ import annotations

import importlib

import typer

__all__ = ["register"]

# (module under aria.cli, group name or None for top-level commands)
_GROUPS: tuple[tuple[str, str | None], ...] = (
    ("node", "node"),
    ("network", "network"),
    ("hardware", "hardware"),
    ("bench", None),
    ("model", "model"),
    ("library", "library"),
    ("engine", "engine"),
    ("api", "api"),
    ("ledger", "ledger"),
    ("chat", None),
    ("memory", "memory"),
    ("route", None),
)


def register(app: typer.Typer) -> None:
    for module_name, group in _GROUPS:
        module = importlib.import_module(f"aria.cli.{module_name}")
        if group is None:
            module.register(app)
        else:
            app.add_typer(module.app, name=group)
