"""``aria library``: publish installed models to peers' libraries, and see what is shared.

With a node running, each command goes to it (it announces what it publishes at once);
without one, publishing only prepares the file's manifest and marks it, and the node
serves it when it starts. Serving needs ``aria node share --library on`` too.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.markup import escape

from aria.cli.context import CliContext, cli_context, print_json

if TYPE_CHECKING:
    from aria.consent import Contract
    from aria.library.shelf import Shelf
    from aria.library.views import LibraryEntry, LibraryStatus
    from aria.p2p.control import NodeClient

app = typer.Typer(
    help="Share model files with peers (green licences only), verified chunk by chunk.",
    no_args_is_help=True,
)

AsJson = Annotated[bool, typer.Option("--json", help="Print JSON (shape: docs/cli.md).")]
ModelArg = Annotated[str, typer.Argument(help="Installed model id.")]


def _node(cli: CliContext) -> NodeClient | None:
    from aria.p2p.control import NodeClient

    return NodeClient.connect(cli.paths)


def _shelf(cli: CliContext) -> Shelf:
    """This home's library records, for when no node runs."""
    import time

    from aria.catalog import load_catalog, load_denylist
    from aria.library.shelf import Shelf
    from aria.p2p.identity import load_or_create_identity
    from aria.p2p.spec import load_spec
    from aria.store import ModelStore

    catalog, denylist = load_catalog(), load_denylist()
    store = ModelStore(cli.paths, catalog, denylist)
    key = load_or_create_identity(cli.paths)
    return Shelf(store, key, load_spec().library, catalog, denylist, time.time)


def _contract(cli: CliContext) -> Contract:
    """The consent contract in force (whether it lends ``library``: sharing on or off)."""
    from aria.cli.consent import in_force

    return in_force(cli).contract


@app.command("publish")
def publish(ctx: typer.Context, model_id: ModelArg, as_json: AsJson = False) -> None:
    """Offer an installed model to peers (its manifest is built once: one pass over it)."""
    cli = cli_context(ctx)
    client = _node(cli)
    if client is not None:
        result: dict[str, Any] = dict(client.request("library_publish", model_id=model_id))
        result["node_running"] = True
    else:
        with cli.err.status(f"hashing {model_id} in chunks..."):
            shared = _shelf(cli).publish(model_id)
        result = {
            "model_id": shared.model.model_id,
            "sha256": shared.model.sha256,
            "chunks": len(shared.manifest.chunks),
            "published": True,
            "sharing": _contract(cli).lends("library"),
            "node_running": False,
        }
    if as_json:
        print_json(result)
        return
    cli.console.print(
        f"published [bold]{escape(result['model_id'])}[/] ({result['chunks']} chunks, "
        f"sha256 {result['sha256'][:16]}...)",
        highlight=False,
    )
    _explain(cli, sharing=bool(result["sharing"]), running=bool(result["node_running"]))


@app.command("unpublish")
def unpublish(ctx: typer.Context, model_id: ModelArg, as_json: AsJson = False) -> None:
    """Stop offering a model to peers (the file stays installed)."""
    cli = cli_context(ctx)
    client = _node(cli)
    if client is not None:
        changed = bool(client.request("library_unpublish", model_id=model_id)["changed"])
    else:
        changed = _shelf(cli).unpublish(model_id)
    if as_json:
        print_json({"model_id": model_id, "published": False, "changed": changed})
        return
    word = "unpublished" if changed else "was not published:"
    cli.console.print(f"{word} [bold]{escape(model_id)}[/]", highlight=False)


@app.command("list")
def list_entries(ctx: typer.Context, as_json: AsJson = False) -> None:
    """Installed models: published or not, and whether their licence lets them be shared."""
    from rich.table import Table

    cli = cli_context(ctx)
    entries = _entries(cli)
    if as_json:
        print_json({"models": [e.model_dump(mode="json") for e in entries]})
        return
    if not entries:
        cli.console.print("No models installed.")
        return
    table = Table(title="Library")
    for column in ("id", "licence", "size", "published", "chunks", "may be shared"):
        table.add_column(column, overflow="fold")
    for entry in entries:
        table.add_row(
            entry.model_id,
            entry.licence,
            f"{entry.size_bytes / 2**20:,.1f} MiB",
            "yes" if entry.published else "no",
            str(entry.chunks) if entry.chunks is not None else "-",
            "yes" if entry.shareable else f"no: {entry.refusal}",
        )
    cli.console.print(table)


def _entries(cli: CliContext) -> list[LibraryEntry]:
    from pydantic import TypeAdapter

    from aria.library.views import LibraryEntry

    client = _node(cli)
    if client is not None:
        return TypeAdapter(list[LibraryEntry]).validate_python(client.request("library_list"))
    return _shelf(cli).entries()


@app.command("status")
def status(ctx: typer.Context, as_json: AsJson = False) -> None:
    """Whether the library is shared, what is being served and fetched now."""
    cli = cli_context(ctx)
    info = library_status(cli)
    running = info is not None
    if info is None:
        info = _offline_status(cli)
    if as_json:
        print_json({**info.model_dump(mode="json"), "node_running": running})
        return
    for line in status_lines(info, running=running):
        cli.console.print(line, highlight=False, soft_wrap=True)


def library_status(cli: CliContext) -> LibraryStatus | None:
    """The running node's library status (None: no node runs)."""
    from aria.library.views import LibraryStatus

    client = _node(cli)
    if client is None:
        return None
    return LibraryStatus.model_validate(client.request("library_status"))


def _offline_status(cli: CliContext) -> LibraryStatus:
    from aria.library.limits import upload_cap_mbps
    from aria.library.views import LibraryStatus

    consent = cli.settings.consent
    contract = _contract(cli)
    published = sum(1 for e in _shelf(cli).entries() if e.published and e.shareable)
    return LibraryStatus(
        sharing=contract.lends("library"),
        published=published,
        uploads_active=0,
        max_uploads=consent.library_max_uploads,
        upload_mbps=upload_cap_mbps(consent, contract),
        served_transfers=0,
        served_bytes=0,
    )


def status_lines(info: LibraryStatus, *, running: bool) -> list[str]:
    """The library in words (``aria library status`` and ``aria network status``)."""
    cap = f"{info.upload_mbps:g} Mbit/s" if info.upload_mbps else "no bandwidth cap"
    lines = [
        f"library         {'shared' if info.sharing else 'not shared'}, "
        f"{info.published} file(s) published; up to {info.max_uploads} peers at once, {cap}",
    ]
    if running:
        lines.append(
            f"                serving {info.uploads_active} now; served {info.served_transfers} "
            f"transfer(s), {info.served_bytes / 2**20:,.1f} MiB since start"
        )
        for fetch in info.fetching:
            lines.append(
                f"                fetching {fetch.model_id}: {fetch.chunks_done}/{fetch.chunks} "
                f"chunks from {sum(s.state == 'active' for s in fetch.sources)} peer(s)"
            )
    else:
        lines.append("                (no node is running: `aria node start` serves it)")
    return lines


def _explain(cli: CliContext, *, sharing: bool, running: bool) -> None:
    if not sharing:
        cli.console.print("peers get it once you share the library: `aria node share --library on`")
    elif not running:
        cli.console.print("the node serves it when it starts (`aria node start`)")
    else:
        cli.console.print("the running node announces it to peers now")
