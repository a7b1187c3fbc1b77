"""Root of the ``aria`` command: registers each command group and renders errors once."""

from __future__ import annotations

import os
import sys
import traceback

import typer

from aria import __version__
from aria.cli.context import CliContext, print_error
from aria.config import AriaPaths
from aria.errors import AriaError

app = typer.Typer(
    name="aria",
    help="ARIA: an AI that is truly yours. Local inference, an OpenAI-compatible API, peers.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"aria {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    ctx: typer.Context,
    version: bool = typer.Option(
        False, "--version", callback=_print_version, is_eager=True, help="Print the version."
    ),
) -> None:
    ctx.obj = CliContext(paths=AriaPaths.from_env())


def _register() -> None:
    # Each group lives in its own module; heavy imports (llama_cpp, libp2p) stay
    # inside the command functions so `aria --help` is instant.
    from aria.cli import commands

    commands.register(app)


def run() -> None:
    """Console-script entry point."""
    _register()
    try:
        try:
            app()
        except BaseExceptionGroup as group:
            # trio nurseries wrap a single start-up failure (port in use, keys
            # required) in a group: unwrap it so it is rendered like any other error.
            if len(group.exceptions) == 1:
                raise group.exceptions[0] from None
            raise
    except AriaError as exc:
        if os.environ.get("ARIA_DEBUG"):
            traceback.print_exc()
        print_error(exc.message)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        sys.exit(130)


if __name__ == "__main__":
    run()
