"""What every command needs: paths, settings (loaded once), a console, one way to fail."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, NoReturn

import typer
from rich.console import Console
from rich.markup import escape

from aria.config import AriaPaths, AriaSettings, load_settings, update_settings

__all__ = ["CliContext", "abort", "cli_context", "print_error"]


@dataclass
class CliContext:
    paths: AriaPaths
    console: Console = field(default_factory=Console)
    err: Console = field(default_factory=lambda: Console(stderr=True))

    _settings: AriaSettings | None = field(default=None, repr=False)

    @property
    def settings(self) -> AriaSettings:
        """The operator's settings, loaded on first use (commands that need none never parse)."""
        if self._settings is None:
            self._settings = load_settings(self.paths)
        return self._settings

    def update(self, section: str, **values: Any) -> AriaSettings:
        """Persist ``values`` in ``config.toml``'s ``section``; later reads see them."""
        self._settings = update_settings(self.paths, {section: values})
        return self._settings


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
