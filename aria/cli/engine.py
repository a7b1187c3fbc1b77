"""``aria engine install bitnet``: build, check and register an inference engine."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from aria.cli.context import cli_context
from aria.errors import ConfigError

app = typer.Typer(help="Inference engines ARIA builds itself.", no_args_is_help=True)

_ENGINES = ("bitnet",)


@app.callback()
def _engine() -> None:
    """Inference engines ARIA builds itself."""


@app.command("install")
def install_command(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="The engine: bitnet (bitnet.cpp's server).")],
    source: Annotated[
        Path | None,
        typer.Option("--source", help="Build from this `git clone --recursive` of bitnet.cpp."),
    ] = None,
) -> None:
    """Build bitnet.cpp from its pinned sources (clang >= 18), check it, register it."""
    from aria.convert.synthetic import write_llama_gguf
    from aria.engines.bitnet import install, register, verify_server

    cli = cli_context(ctx)
    if name not in _ENGINES:
        raise ConfigError(f"unknown engine {name!r}; ARIA can install: {', '.join(_ENGINES)}")
    with cli.err.status("building bitnet.cpp (several minutes on 2 cores)..."):
        binary = install(cli.paths, source_dir=source)
    with (
        cli.err.status("checking the built server with a tiny model..."),
        tempfile.TemporaryDirectory() as tmp,
    ):
        verify_server(binary, write_llama_gguf(Path(tmp) / "check.gguf", quant="F16"))
    register(cli.paths, binary)
    cli.console.print(
        f"[green]installed[/] bitnet.cpp at {escape(str(binary))}; I2_S models now run on it "
        "(`aria model list --all` shows which)"
    )
