"""``aria hardware``: what this machine has, and what it means for ARIA's tiers."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Final

import typer
from rich.markup import escape

from aria.cli.context import cli_context

if TYPE_CHECKING:
    from rich.console import Console

    from aria.hardware import HardwareSnapshot, TierAdvice

app = typer.Typer(help="Inspect this machine's hardware.", no_args_is_help=True)

_GB: Final = 1e9
_READINESS_STYLE: Final = {
    "ready": "green",
    "limited": "yellow",
    "unavailable": "red",
    "detected": "cyan",
}


@app.callback()
def _hardware() -> None:
    """Inspect this machine's hardware."""


@app.command("info")
def info(
    ctx: typer.Context,
    as_json: bool = typer.Option(False, "--json", help="Print machine-readable JSON."),
) -> None:
    """CPU, ISA features, RAM, GPUs and NPUs, and what they mean for the tiers."""
    from aria.hardware import detect, hardware_report, tier_support

    cli = cli_context(ctx)
    snapshot = detect()
    report = hardware_report(snapshot)
    if as_json:
        typer.echo(json.dumps(report, indent=2))
        return
    threads = report["recommended_threads"]
    _render(cli.console, snapshot, tier_support(snapshot), threads, report["memory_budget_bytes"])


def _render(
    console: Console,
    snapshot: HardwareSnapshot,
    advice: list[TierAdvice],
    threads: dict[str, int],
    budget: int,
) -> None:
    from rich.table import Table

    from aria.hardware.cpu import FEATURE_GROUPS

    cpu = snapshot.cpu
    machine = Table(title="Hardware", show_header=False, title_justify="left")
    machine.add_column(style="bold")
    machine.add_column()
    machine.add_row("CPU", escape(f"{cpu.model} ({cpu.vendor}, {cpu.arch})"))
    physical = cpu.physical_cores if cpu.physical_cores is not None else "unknown"
    machine.add_row("Cores", f"{physical} physical, {cpu.logical_cores} logical")
    groups = [(name, [f for f in names if f in cpu.features]) for name, names in FEATURE_GROUPS]
    present = [(name, found) for name, found in groups if found]
    for name, found in present:
        machine.add_row(f"  {name}", " ".join(found))
    if not present:
        machine.add_row("  ISA features", "none that ARIA's kernels use")
    mem = snapshot.memory
    machine.add_row(
        "Memory",
        f"{mem.total_bytes / _GB:.1f} GB total, {mem.available_bytes / _GB:.1f} GB available, "
        f"{budget / _GB:.1f} GB budget for models",
    )
    for gpu in snapshot.gpus or (None,):
        if gpu is None:
            machine.add_row("GPU", "none")
            continue
        size = f"{gpu.memory_bytes / _GB:.1f} GB" if gpu.memory_bytes else "memory unknown"
        driver = f", driver {gpu.driver}" if gpu.driver else ""
        machine.add_row("GPU", escape(f"{gpu.name}: {size}, {gpu.backend}{driver}"))
    for npu in snapshot.npus or (None,):
        label = escape(f"{npu.name} ({npu.kind})") if npu else "none"
        machine.add_row("NPU", label)
    machine.add_row("OS", escape(f"{snapshot.os} {snapshot.machine}"))
    console.print(machine)

    tiers = Table(title="What it means for ARIA", title_justify="left")
    tiers.add_column("tier")
    tiers.add_column("status")
    tiers.add_column("detail")
    for item in advice:
        style = _READINESS_STYLE.get(item.readiness.value, "")
        tiers.add_row(item.subject, f"[{style}]{item.readiness.value}[/]", escape(item.detail))
    console.print(tiers)
    advice_line = ", ".join(f"{size} → {count}" for size, count in threads.items())
    console.print(f"Recommended decode threads: {advice_line}")
