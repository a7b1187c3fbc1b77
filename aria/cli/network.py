"""``aria network``: ask the running node about its peers, reachability and models."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import typer

from aria.cli.context import CliContext, cli_context

if TYPE_CHECKING:
    from aria.library.views import LibraryStatus
    from aria.p2p.control import NodeClient

app = typer.Typer(
    help="Inspect the peer-to-peer network through the running node.", no_args_is_help=True
)


def _client(ctx: typer.Context):  # type: ignore[no-untyped-def]
    from aria.p2p.control import NodeClient

    return NodeClient.require(cli_context(ctx).paths)


def _library_status(client: NodeClient) -> LibraryStatus | None:
    """The node's library (None for a node without one)."""
    from aria.errors import PeerError
    from aria.library.views import LibraryStatus

    try:
        return LibraryStatus.model_validate(client.request("library_status"))
    except PeerError as exc:
        if exc.code == "unknown_op":
            return None
        raise


def _find_in_libraries(cli: CliContext, client: NodeClient, model_id: str, as_json: bool) -> None:
    import json

    from rich.table import Table

    from aria.errors import AriaError, NodeNotRunning, RoutingError

    try:
        found = client.request("library_find", model_id=model_id)
    except RoutingError as exc:  # nobody offers it: an empty answer, not a failure
        if as_json:
            typer.echo("[]")
        else:
            cli.console.print(f"library: {exc.message}", highlight=False)
        return
    except AriaError as exc:  # e.g. a catalog file peers may not exchange
        if as_json or isinstance(exc, NodeNotRunning):
            raise
        cli.console.print(f"library: {exc.message}", highlight=False)
        return
    if as_json:
        typer.echo(json.dumps(found))
        return
    if not found:
        cli.console.print(f"no peer's library shares {model_id}")
        return
    table = Table(title=f"{model_id}: {len(found)} library provider(s)")
    for column in ("peer", "answer", "chunks held", "why"):
        table.add_column(column, overflow="fold")
    for provider in found:
        held = provider.get("chunks_held")
        table.add_row(
            provider["peer_id"],
            provider["state"],
            "all" if provider["state"] == "complete" else str(held if held is not None else "-"),
            provider.get("reason") or "",
        )
    cli.console.print(table)


@app.command("peers")
def peers(
    ctx: typer.Context,
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
) -> None:
    """Peers the node is connected to or holds a current advert of, with their reputation
    (0..1: spot checks of their work, and their protocol standing)."""
    from rich.table import Table

    cli = cli_context(ctx)
    found = _client(ctx).peers()
    if as_json:
        typer.echo("[" + ",".join(p.model_dump_json() for p in found) + "]")
        return
    if not found:
        cli.console.print("no peers yet")
        return
    table = Table(title=f"{len(found)} peer(s)")
    columns = ("peer", "connection", "rtt", "reputation", "addresses", "hardware", "models")
    for column in columns:
        table.add_column(column, overflow="fold")  # ids and addresses must stay copyable
    for peer in found:
        rtt = f"{peer.rtt_ms:.1f} ms" if peer.rtt_ms is not None else "-"
        kind = peer.connection + ("" if peer.verified else " (unverified)")
        models = ", ".join(m.id for m in peer.models) or "-"
        checks = f"{peer.checks_passed} ok, {peer.checks_failed} failed"
        table.add_row(
            peer.peer_id,
            kind,
            rtt,
            f"{peer.reputation:.2f} ({checks})",
            "\n".join(peer.addrs) or "-",
            peer.hardware.describe(),
            models,
        )
    cli.console.print(table)


@app.command("status")
def status(
    ctx: typer.Context,
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of text."),
) -> None:
    """Listen addresses, reachability (AutoNAT), relays in use, the DHT's size, the library."""
    import json

    cli = cli_context(ctx)
    client = _client(ctx)
    info = client.status()
    library = _library_status(client)
    if as_json:
        shown = info.model_dump(mode="json")
        shown["library"] = None if library is None else library.model_dump(mode="json")
        typer.echo(json.dumps(shown))
        return
    uptime = time.time() - info.started_at
    lines = [
        f"peer id         {info.peer_id}",
        f"agent           {info.agent} (protocol {info.protocol}), up {uptime:.0f} s",
        f"reachability    {info.reachability}"
        + (" (relay service on)" if info.relay_service else ""),
        "listening on    " + ("\n                ".join(info.listen_addrs) or "-"),
        "relayed via     " + ("\n                ".join(info.relayed_addrs) or "-"),
        f"peers           {info.connected_peers} connected, {info.aria_peers} verified ARIA nodes",
        f"DHT             {info.dht_routing_table} in routing table, "
        f"~{info.dht_size_estimate} nodes",
        f"mDNS            {'on' if info.mdns else 'off'}",
    ]
    if info.banned_peers:
        lines.append("banned          " + ", ".join(info.banned_peers))
    if library is not None:
        from aria.cli.library import status_lines

        lines.extend(status_lines(library, running=True))
    for line in lines:
        cli.console.print(line, highlight=False, soft_wrap=True)


@app.command("find")
def find(
    ctx: typer.Context,
    model_id: str = typer.Argument(..., help="Catalog id of the model."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
    library: bool = typer.Option(
        False, "--library", help="Only the peers whose library shares the model's file."
    ),
) -> None:
    """Which peers serve MODEL_ID (a DHT lookup; every advert is verified), and which
    share its file in their library (each is asked for the file's manifest)."""
    from rich.table import Table

    cli = cli_context(ctx)
    client = _client(ctx)
    if library:
        _find_in_libraries(cli, client, model_id, as_json)
        return
    providers = client.find(model_id)
    if as_json:
        typer.echo("[" + ",".join(p.model_dump_json() for p in providers) + "]")
        return
    _find_in_libraries(cli, client, model_id, as_json=False)
    if not providers:
        cli.console.print(f"no peer serves {model_id}")
        return
    table = Table(title=f"{model_id}: {len(providers)} provider(s)")
    for column in ("peer", "connection", "sha256", "licence", "load", "accepts jobs"):
        table.add_column(column, overflow="fold")
    for p in providers:
        table.add_row(
            p.peer_id,
            p.connection,
            p.model.sha256[:16] + "…",
            p.model.licence_class,
            f"{p.load.cpu_percent:.0f}% cpu, {p.load.active_jobs} jobs",
            "yes" if p.consent.share_inference else "no",
        )
    cli.console.print(table)


@app.command("ping")
def ping(
    ctx: typer.Context,
    peer_id: str = typer.Argument(..., help="Peer id to ping."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of text."),
) -> None:
    """One libp2p ping to PEER_ID (connecting through its advert if needed)."""
    import json

    result = _client(ctx).ping(peer_id)
    if as_json:
        typer.echo(json.dumps(result))
        return
    cli_context(ctx).console.print(
        f"{peer_id}: {result['rtt_ms']:.1f} ms ({result['connection']})",
        highlight=False,
        soft_wrap=True,
    )
