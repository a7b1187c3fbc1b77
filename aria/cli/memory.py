"""``aria memory``: see, search, add, forget, export and import what ARIA remembers.

Commands work on the local user's memory (``--user key-<id>`` reaches an API key's). The
ones that need meaning (add, search, remind, import) start the embedding model in its
worker process; list, forget and export only open the file.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer
from rich.markup import escape

from aria.cli.context import CliContext, cli_context, print_json
from aria.errors import InvalidRequest, MemoryDisabled

if TYPE_CHECKING:
    from aria.memory import Hit, Learned, Memory, MemoryKind, MemoryService, Reminder

app = typer.Typer(help="What ARIA remembers, on this machine only.", no_args_is_help=True)

T = TypeVar("T")

JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON.")]
UserOption = Annotated[
    str, typer.Option("--user", help="Whose memory: local, or key-<id> for an API key's.")
]
KindOption = Annotated[
    str | None, typer.Option("--kind", "-k", help="episodic, semantic or procedural.")
]


def _kind(value: str | None) -> MemoryKind | None:
    from aria.memory import MemoryKind

    if value is None:
        return None
    try:
        return MemoryKind(value.lower())
    except ValueError:
        raise InvalidRequest(
            f"--kind must be one of {', '.join(k.value for k in MemoryKind)}, not {value!r}"
        ) from None


def _run(cli: CliContext, user: str, work: Callable[[MemoryService], Awaitable[T]]) -> T:
    """Run ``work`` on ``user``'s memory with the embedding model (started for it)."""
    import trio

    from aria.memory import MemoryHub, NodeModels, embedder_for
    from aria.node import Node

    _check_enabled(cli)

    async def main() -> T:
        node = Node.create(cli.paths, cli.settings)
        async with node.running():
            with MemoryHub(cli.paths, embedder_for(node), NodeModels(node)) as hub:
                return await work(await hub.service(user))

    return trio.run(main)


def _open(cli: CliContext, user: str, work: Callable[[MemoryService], T]) -> T:
    """Run ``work`` on ``user``'s memory file alone (no model needed)."""
    from aria.memory import MemoryService, MemoryStore, store_file

    _check_enabled(cli)
    with MemoryStore(store_file(cli.paths, user)) as store:
        return work(MemoryService(store, None))


def _check_enabled(cli: CliContext) -> None:
    if not cli.settings.memory.enabled:
        raise MemoryDisabled("memory is turned off (memory.enabled = false in config.toml)")


def _table(cli: CliContext, title: str, memories: list[Memory], scores: list[str] | None) -> None:
    from datetime import datetime

    from rich.table import Table

    table = Table(title=title)
    for column in ("id", "kind", "when", *(["score"] if scores else []), "text"):
        table.add_column(column, overflow="fold")
    for index, memory in enumerate(memories):
        when = datetime.fromtimestamp(memory.created_at).strftime("%Y-%m-%d %H:%M")
        kind = memory.kind.value + ("" if memory.active else " (old)")
        if memory.role:
            kind += f" ({memory.role})"
        extra = [scores[index]] if scores else []
        table.add_row(memory.id, kind, when, *extra, escape(memory.text))
    cli.console.print(table)


@app.command("list")
def list_(
    ctx: typer.Context,
    kind: KindOption = None,
    limit: Annotated[int, typer.Option(min=1, help="How many, newest first.")] = 50,
    history: Annotated[bool, typer.Option(help="Include superseded facts.")] = False,
    user: UserOption = "local",
    as_json: JsonOption = False,
) -> None:
    """List memories, newest first."""
    cli, wanted = cli_context(ctx), _kind(kind)
    memories = _open(
        cli,
        user,
        lambda s: s.store.select(
            kinds=[wanted] if wanted else None, limit=limit, include_superseded=history
        ),
    )
    if as_json:
        print_json({"memories": [m.to_dict() for m in memories]})
    elif not memories:
        cli.console.print("No memories yet. `aria memory add TEXT` or chat with `aria chat`.")
    else:
        _table(cli, f"Memories of {user}", memories, None)


@app.command("search")
def search(
    ctx: typer.Context,
    query: Annotated[str, typer.Argument(help='What to look for ("last Tuesday" narrows it).')],
    limit: Annotated[int, typer.Option(min=1, max=50)] = 5,
    kind: KindOption = None,
    mode: Annotated[str, typer.Option(help="hybrid, vector or keyword.")] = "hybrid",
    history: Annotated[bool, typer.Option(help="Include superseded facts.")] = False,
    user: UserOption = "local",
    as_json: JsonOption = False,
) -> None:
    """Search memories by meaning and keywords."""
    from aria.memory import Mode

    cli, wanted = cli_context(ctx), _kind(kind)
    try:
        chosen = Mode(mode)
    except ValueError:
        raise InvalidRequest(f"--mode must be hybrid, vector or keyword, not {mode!r}") from None

    async def work(service: MemoryService) -> list[Hit]:
        kinds = [wanted] if wanted else None
        return await service.search(
            query, limit=limit, kinds=kinds, mode=chosen, include_superseded=history
        )

    hits = _run(cli, user, work)
    if as_json:
        print_json({"hits": [hit.to_dict() for hit in hits]})
    elif not hits:
        cli.console.print("Nothing found.")
    else:
        scores = [f"{h.similarity:.2f}" if h.similarity is not None else "-" for h in hits]
        _table(cli, f"Memories matching {query!r}", [h.memory for h in hits], scores)


@app.command("add")
def add(
    ctx: typer.Context,
    text: Annotated[str, typer.Argument(help='A fact ("I live in Lyon") or an instruction.')],
    kind: KindOption = None,
    user: UserOption = "local",
    as_json: JsonOption = False,
) -> None:
    """Remember something (a newer fact replaces an older one in the same slot)."""
    cli, wanted = cli_context(ctx), _kind(kind)

    async def work(service: MemoryService) -> Learned:
        return await service.add(text, kind=wanted, source="cli")

    learned = _run(cli, user, work)
    if as_json:
        print_json(
            {
                "memory": learned.memory.to_dict() if learned.memory else None,
                "duplicate_of": learned.duplicate_of,
                "superseded": list(learned.superseded),
            }
        )
        return
    if learned.duplicate_of:
        cli.console.print(f"already remembered as {learned.duplicate_of}")
    elif learned.memory is not None:
        cli.console.print(f"remembered [bold]{learned.memory.id}[/] ({learned.memory.kind})")
        for old in learned.superseded:
            cli.console.print(f"  replaces {old} (kept in the history: --history)")


@app.command("forget")
def forget(
    ctx: typer.Context,
    ids: Annotated[list[str] | None, typer.Argument(help="Memory or reminder ids.")] = None,
    all_: Annotated[bool, typer.Option("--all", help="Forget everything (of --kind).")] = False,
    yes: Annotated[bool, typer.Option("--yes", help="Confirm --all.")] = False,
    kind: KindOption = None,
    user: UserOption = "local",
    as_json: JsonOption = False,
) -> None:
    """Forget for good: rows, vectors, keyword index, then the file is compacted."""
    cli, wanted = cli_context(ctx), _kind(kind)
    if all_ == bool(ids):
        raise InvalidRequest("name the ids to forget, or use --all (with --yes)")
    if all_ and not yes:
        raise InvalidRequest("--all forgets everything: add --yes to confirm")
    if all_:
        count = _open(cli, user, lambda s: s.store.forget_all([wanted] if wanted else None))
        result: dict[str, Any] = {"deleted": count}
    else:
        result = {"deleted": _open(cli, user, lambda s: s.store.forget(list(ids or [])))}
    if as_json:
        print_json(result)
    elif all_:
        cli.console.print(f"forgot {result['deleted']} item(s)")
    else:
        cli.console.print(f"forgot {', '.join(result['deleted'])}")


@app.command("export")
def export(
    ctx: typer.Context,
    target: Annotated[Path | None, typer.Argument(help="File to write (default: stdout).")] = None,
    user: UserOption = "local",
) -> None:
    """Export every memory and reminder as JSON (no vectors: they are recomputed on import)."""
    from aria.files import write_atomic
    from aria.memory import export_document

    cli = cli_context(ctx)
    document = _open(cli, user, export_document)
    text = json.dumps(document, ensure_ascii=False, indent=2)
    if target is None:
        typer.echo(text)
        return
    write_atomic(target, text + "\n")  # private (0600): it is the user's memory
    count = len(document["memories"]) + len(document["reminders"])
    cli.err.print(f"exported {count} item(s) to {escape(str(target))}")


@app.command("import")
def import_(
    ctx: typer.Context,
    source: Annotated[
        Path, typer.Argument(help="A file written by `aria memory export` (- for stdin).")
    ],
    user: UserOption = "local",
    as_json: JsonOption = False,
) -> None:
    """Import an export: what is not here yet is added (and embedded)."""
    from aria.memory import import_document

    cli = cli_context(ctx)
    try:
        raw = sys.stdin.read() if str(source) == "-" else source.read_text(encoding="utf-8")
        document = json.loads(raw)
    except OSError as exc:
        raise InvalidRequest(f"cannot read {source}: {exc.strerror}") from None
    except ValueError as exc:
        raise InvalidRequest(f"{source} is not JSON ({exc})") from None

    async def work(service: MemoryService) -> dict[str, int]:
        return await import_document(service, document)

    counts = _run(cli, user, work)
    if as_json:
        print_json(counts)
    else:
        cli.console.print(
            f"imported {counts['memories']} memorie(s) and {counts['reminders']} reminder(s); "
            f"{counts['skipped']} already here"
        )


@app.command("remind")
def remind(
    ctx: typer.Context,
    text: Annotated[
        str, typer.Argument(help='"tomorrow at 9 call the bank", "when I talk about the trip..."')
    ],
    user: UserOption = "local",
    as_json: JsonOption = False,
) -> None:
    """Set a reminder by a time, an event in a later chat, or a model download."""
    cli = cli_context(ctx)

    async def work(service: MemoryService) -> Reminder:
        return await service.remind(text, source="cli")

    reminder = _run(cli, user, work)
    if as_json:
        print_json({"reminder": reminder.to_dict()})
    else:
        cli.console.print(
            f"reminder [bold]{reminder.id}[/] {escape(reminder.describe())}: "
            f"{escape(reminder.text)}"
        )


@app.command("reminders")
def reminders(
    ctx: typer.Context,
    status: Annotated[str | None, typer.Option(help="pending, fired or delivered.")] = None,
    user: UserOption = "local",
    as_json: JsonOption = False,
) -> None:
    """List reminders."""
    from aria.memory import ReminderStatus

    cli = cli_context(ctx)
    try:
        wanted = ReminderStatus(status) if status else None
    except ValueError:
        raise InvalidRequest(
            f"--status must be pending, fired or delivered, not {status!r}"
        ) from None
    found = _open(cli, user, lambda s: s.store.reminders.select(wanted))
    if as_json:
        print_json({"reminders": [r.to_dict() for r in found]})
        return
    if not found:
        cli.console.print('No reminders. `aria memory remind "tomorrow at 9 call the bank"`.')
    for r in found:
        cli.console.print(f"{r.id}  {r.status.value:<9}  {escape(r.describe())}: {escape(r.text)}")


@app.command("watch")
def watch(ctx: typer.Context, user: UserOption = "local") -> None:
    """Print reminders as they fire, until Ctrl+C (each fires once, even across restarts)."""
    import trio

    from aria.memory import MemoryHub, NodeModels, embedder_for, watch_reminders
    from aria.node import Node

    cli = cli_context(ctx)
    _check_enabled(cli)
    node = Node.create(cli.paths, cli.settings)

    async def show(_: str, fired: list[Reminder]) -> None:
        for reminder in fired:
            print_reminder(cli, reminder)

    async def main() -> None:
        async with node.running():
            with MemoryHub(cli.paths, embedder_for(node), NodeModels(node)) as hub:
                cli.err.print("[dim]Watching reminders; Ctrl+C to stop.[/]")
                await watch_reminders(hub, lambda: [user], show)

    trio.run(main)


def print_reminder(cli: CliContext, reminder: Reminder) -> None:
    """One fired reminder, as the chat and ``watch`` show it (flushed at once)."""
    cli.console.print(
        f"[bold yellow]reminder:[/] {escape(reminder.text)} "
        f"[dim]({escape(reminder.describe())}; you asked: {escape(reminder.request)})[/]"
    )
    sys.stdout.flush()


@app.command("api")
def api(
    ctx: typer.Context,
    state: Annotated[str | None, typer.Argument(help="on or off (omit to show).")] = None,
) -> None:
    """Whether API requests without a key use the local memory (off by default)."""
    cli = cli_context(ctx)
    if state is not None:
        if state not in ("on", "off"):
            raise InvalidRequest(f"say on or off, not {state!r}")
        cli.update("memory", api=state == "on")
    current = "on" if cli.settings.memory.api else "off"
    cli.console.print(f"memory for API requests without a key: {current}")
