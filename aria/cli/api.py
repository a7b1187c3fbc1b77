"""``aria api``: serve the OpenAI-compatible API and manage its keys."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape
from rich.table import Table

from aria.cli.context import CliContext, cli_context, print_json
from aria.errors import ConfigError

if TYPE_CHECKING:
    from aria.apikeys import KeyStore
    from aria.cheat import PeerAnswerCheat
    from aria.node import Node

app = typer.Typer(help="Serve the OpenAI-compatible API and manage its keys.", no_args_is_help=True)
key_app = typer.Typer(help="Create, list and revoke API keys.", no_args_is_help=True)
app.add_typer(key_app, name="key")

AsJson = Annotated[bool, typer.Option("--json", help="Print JSON (shape: docs/cli.md).")]


def _keys(cli: CliContext) -> KeyStore:
    # aria.api pulls in FastAPI: imported here to keep `aria --help` fast.
    from aria.apikeys import KeyStore

    cli.paths.ensure()
    return KeyStore(cli.paths.api)


@app.command("start")
def start(
    ctx: typer.Context,
    port: Annotated[int | None, typer.Option(help="TCP port (default: api.port, 3000).")] = None,
    host: Annotated[
        str | None, typer.Option(help="Address to listen on (default: api.host, 127.0.0.1).")
    ] = None,
    threads: Annotated[
        int | None, typer.Option(min=1, max=1024, help="Threads per backend (default: advice).")
    ] = None,
    tls_cert: Annotated[
        Path | None,
        typer.Option("--tls-cert", help="PEM certificate to serve HTTPS (default: api.tls_cert)."),
    ] = None,
    tls_key: Annotated[
        Path | None,
        typer.Option("--tls-key", help="PEM key of the certificate (default: api.tls_key)."),
    ] = None,
    require_keys: Annotated[
        bool,
        typer.Option(
            "--require-keys",
            help="Require API keys even on loopback (e.g. behind a reverse proxy).",
        ),
    ] = False,
    insecure_http: Annotated[
        bool,
        typer.Option(
            "--insecure-http",
            help="Serve plain HTTP on a non-loopback address (keys and prompts in clear; "
            "for a TLS reverse proxy on a trusted network).",
        ),
    ] = False,
) -> None:
    """Serve the OpenAI-compatible API (chat, completions, embeddings, models, health, metrics)."""
    import trio

    from aria.api import ServerConfig, serve
    from aria.cli.recording import open_records
    from aria.node import Node

    cli = cli_context(ctx)
    settings = cli.settings
    if threads is not None:
        settings.inference.threads = threads
    cert = tls_cert or (Path(settings.api.tls_cert) if settings.api.tls_cert else None)
    key = tls_key or (Path(settings.api.tls_key) if settings.api.tls_key else None)
    config = ServerConfig(
        host or settings.api.host,
        settings.api.port if port is None else port,
        require_keys=True if require_keys else None,
        tls_cert=cert,
        tls_key=key,
        insecure_http=insecure_http,
    )
    records = open_records(cli.paths, settings)
    node = Node.create(cli.paths, settings, recorder=records.recorder, contracts=records.contracts)
    node.cheat = _test_only_cheat(cli)

    async def main() -> None:
        async with trio.open_nursery() as nursery:
            urls = await nursery.start(serve, node, config)
            _print_banner(cli, node, urls, keys_required=config.keys_required)

    trio.run(main)
    cli.console.print("API stopped.")


def _test_only_cheat(cli: CliContext) -> PeerAnswerCheat | None:
    """The test-only switch that makes this node alter peers' answers (aria.cheat)."""
    import os

    from aria.cheat import CHEAT_ENV, PeerAnswerCheat

    value = os.environ.get(CHEAT_ENV)
    if not value:
        return None
    cheat = PeerAnswerCheat(float(value))
    cli.err.print(
        f"[bold red]warning:[/] {CHEAT_ENV}={value}: this API ALTERS {cheat.fraction:.0%} of the "
        "answers it generates for peers (a test-only switch)",
        highlight=False,
    )
    return cheat


def _print_banner(cli: CliContext, node: Node, urls: list[str], *, keys_required: bool) -> None:
    resolution = node.resolve(None)
    bitnet = node.bitnet_server
    lines = [
        f"ARIA API listening on [bold]{escape(', '.join(urls))}[/] "
        f"(OpenAI base URL: {escape(urls[0])}/v1)",
        f"dashboard: {escape(urls[0])}/",
        f'profile {node.settings.node.profile}; model "auto" -> '
        f"{escape(', '.join(resolution.candidates))}",
        f"[yellow]note:[/] {escape(resolution.notice)}" if resolution.notice else "",
        "bitnet.cpp server: "
        + (escape(str(bitnet)) if bitnet else "not found (ternary models run on llama.cpp)"),
        "API keys: "
        + ("required (Authorization: Bearer)" if keys_required else "not required on loopback"),
        "TLS: on" if urls[0].startswith("https:") else "TLS: off (plain HTTP)",
        "Press Ctrl+C to stop.",
    ]
    for line in filter(None, lines):
        cli.console.print(line, soft_wrap=True, highlight=False)


@key_app.command("create")
def key_create(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="A label for the key.")],
    as_json: AsJson = False,
) -> None:
    """Create a key; it is shown once and stored only as a hash."""
    cli = cli_context(ctx)
    key, secret = _keys(cli).create(name)
    if as_json:
        print_json({**key.public(), "key": secret})
        return
    cli.console.print(f"created API key [bold]{escape(key.name)}[/] (id {key.id}):")
    cli.console.print(secret, highlight=False, soft_wrap=True)
    cli.console.print("[yellow]Store it now: it cannot be shown again.[/]")


@key_app.command("list")
def key_list(ctx: typer.Context, as_json: AsJson = False) -> None:
    """List keys (ids, names, first characters; never the secrets)."""
    cli = cli_context(ctx)
    keys = _keys(cli).all()
    if as_json:
        print_json({"keys": [key.public() for key in keys]})
        return
    if not keys:
        cli.console.print("No API keys. Create one with `aria api key create NAME`.")
        return
    table = Table(title="API keys")
    for column in ("id", "name", "key", "created", "memory"):
        table.add_column(column)
    for key in keys:
        memory = "on" if key.memory else "off"
        table.add_row(key.id, escape(key.name), key.hint, key.created, memory)
    cli.console.print(table)


@key_app.command("memory")
def key_memory(
    ctx: typer.Context,
    key: Annotated[str, typer.Argument(help="The key's id or name.")],
    state: Annotated[str, typer.Argument(help="on or off.")],
) -> None:
    """Let requests with this key use their own memory (off by default; docs/memory.md)."""
    cli = cli_context(ctx)
    if state not in ("on", "off"):
        raise ConfigError(f"say on or off, not {state!r}")
    changed = _keys(cli).set_memory(key, state == "on")
    cli.console.print(
        f"memory {state} for API key {escape(changed.name)} (id {changed.id}, "
        f"memory user key-{changed.id})"
    )


@key_app.command("revoke")
def key_revoke(
    ctx: typer.Context, key: Annotated[str, typer.Argument(help="The key's id or name.")]
) -> None:
    """Revoke a key; a running server refuses it from its next request."""
    cli = cli_context(ctx)
    revoked = _keys(cli).revoke(key)
    cli.console.print(f"revoked API key {escape(revoked.name)} (id {revoked.id})")
