"""What every command needs: paths, settings (loaded once), a console, one way to fail,
one way to print JSON.

Output that is not a terminal (a pipe, a file, a script) is not cut to 80 columns: Rich
then sizes tables to their content (``COLUMNS`` still wins when set).
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass, field
from typing import Any, NoReturn

import typer
from rich.console import Console
from rich.markup import escape

from aria.config import AriaPaths, AriaSettings, PlacementPreference, load_settings, update_settings

__all__ = [
    "CliContext",
    "abort",
    "cli_context",
    "console_for",
    "parse_placement",
    "print_error",
    "print_json",
]

# Wide enough for any table ARIA prints; lines only take the width they need.
_UNBOUNDED_WIDTH = 1000


def console_for(*, stderr: bool = False) -> Console:
    """A Rich console on stdout (or stderr), 80-column-free when not on a terminal."""
    stream = sys.stderr if stderr else sys.stdout
    piped = not stream.isatty() and not os.environ.get("COLUMNS")
    return Console(stderr=stderr, width=_UNBOUNDED_WIDTH if piped else None)


def parse_placement(text: str | None) -> PlacementPreference | None:
    """A ``--placement`` flag's value (None: the node's ``node.placement``).

    Raises:
        InvalidRequest: not one of the preferences.
    """
    from aria.errors import InvalidRequest
    from aria.router import PREFERENCES, parse_preference

    if text is None:
        return None
    preference = parse_preference(text)
    if preference is None:
        raise InvalidRequest(f"--placement must be one of {', '.join(PREFERENCES)}")
    return preference


def print_json(payload: Any) -> None:
    """The one way a command prints its ``--json`` result: indented UTF-8 JSON on stdout."""
    typer.echo(json.dumps(payload, indent=2, ensure_ascii=False))


@dataclass
class CliContext:
    paths: AriaPaths
    console: Console = field(default_factory=console_for)
    err: Console = field(default_factory=lambda: console_for(stderr=True))

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
    console_for(stderr=True).print(
        f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True
    )


def abort(message: str, code: int = 1) -> NoReturn:
    """Inside a command: print one error line and exit with ``code``."""
    print_error(message)
    raise typer.Exit(code)
