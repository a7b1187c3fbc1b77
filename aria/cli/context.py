"""What every command needs: paths, settings (loaded once), a console, one way to fail."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import NoReturn

import typer
from rich.console import Console
from rich.markup import escape

from aria.config import AriaPaths, AriaSettings, load_settings, save_settings

__all__ = ["CliContext", "abort", "cli_context", "print_error"]


@dataclass
class CliContext:
    paths: AriaPaths
    console: Console = field(default_factory=Console)
    err: Console = field(default_factory=lambda: Console(stderr=True))

    @cached_property
    def settings(self) -> AriaSettings:
        return load_settings(self.paths)

    def save(self) -> None:
        save_settings(self.paths, self.settings)


def cli_context(ctx: typer.Context) -> CliContext:
    """The invocation's context, created by the root callback."""
    root = ctx.find_root()
    if not isinstance(root.obj, CliContext):
        root.obj = CliContext(paths=AriaPaths.from_env())
    return root.obj


def print_error(message: str) -> None:
    """Print one readable error line on stderr."""
    Console(stderr=True).print(
        f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True
    )


def abort(message: str, code: int = 1) -> NoReturn:
    """Inside a command: print one error line and exit with ``code``."""
    print_error(message)
    raise typer.Exit(code)
