"""``aria model plan ID``: how an installed model would be split over RPC workers, and why."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape

from aria.cli.context import cli_context, print_error
from aria.errors import PlacementRefused

if TYPE_CHECKING:
    from rich.console import Console

    from aria.split import Placement

__all__ = ["plan_command"]

_MIB = 1024**2


def plan_command(
    ctx: typer.Context,
    model_id: Annotated[str, typer.Argument(help="Installed model id.")],
    worker: Annotated[
        list[str] | None,
        typer.Option(
            "--worker",
            help="RPC worker HOST:PORT, optionally @GB offered (repeat). Each is probed.",
        ),
    ] = None,
    local_memory_gb: Annotated[
        float | None,
        typer.Option(help="Memory this node may use (default: the node's budget).", min=0),
    ] = None,
    min_peers: Annotated[int, typer.Option(help="Use at least this many workers.", min=0)] = 0,
    max_local_layers: Annotated[
        int | None, typer.Option(help="Keep at most this many layers on this node.", min=0)
    ] = None,
    max_rtt_ms: Annotated[
        float, typer.Option(help="Skip workers slower than this round trip.", min=0)
    ] = 100.0,
    as_json: Annotated[bool, typer.Option("--json", help="Print the plan as JSON.")] = False,
) -> None:
    """Explain where each layer of MODEL_ID would run: this node, then the fewest workers."""
    from aria.node import Node
    from aria.split import PlanPolicy, WorkerSpec, probe_candidates, split_model_for

    cli = cli_context(ctx)
    specs = [WorkerSpec.parse(text) for text in worker or ()]
    node = Node.create(cli.paths, cli.settings)
    policy = PlanPolicy(
        max_rtt_s=max_rtt_ms / 1000,
        min_peers=min_peers,
        max_local_layers=max_local_layers,
    )
    with cli.err.status(f"probing {len(specs)} worker(s)..."):
        candidates, unreachable = probe_candidates(specs)
    local_bytes = (
        node.dispatcher.limits.budget_bytes
        if local_memory_gb is None
        else int(local_memory_gb * 1024**3)
    )
    model = node.installed(model_id)
    split = split_model_for(
        model, node.launch_for(model), lambda: candidates, policy, local_memory_bytes=local_bytes
    )
    try:
        placement = split.plan()
    except PlacementRefused:
        for endpoint, reason in unreachable.items():
            print_error(f"worker {endpoint} unreachable: {reason}")
        raise
    if as_json:
        typer.echo(json.dumps({**placement.to_dict(), "unreachable": unreachable}, indent=2))
        return
    _print(cli.console, placement, unreachable)


def _print(console: Console, placement: Placement, unreachable: dict[str, str]) -> None:
    from rich.table import Table

    table = Table(title=f"Split plan for {escape(placement.model)} (context {placement.n_ctx})")
    for column in ("device", "layers", "memory needed", "offered", "RTT", "threads"):
        table.add_column(column)
    local = f"0-{placement.local_layers - 1}" if placement.local_layers else "-"
    table.add_row("this node", local, f"{placement.local_bytes / _MIB:.1f} MiB", "-", "-", "-")
    for share in placement.shares:
        span = (
            f"{share.first_layer}-{share.first_layer + share.layers - 1}" if share.layers else "-"
        )
        table.add_row(
            escape(
                share.peer_id
                if share.peer_id == share.endpoint
                else f"{share.peer_id} ({share.endpoint})"
            ),
            span + (" + head" if share.holds_output else ""),
            f"{share.bytes_needed / _MIB:.1f} MiB",
            f"{share.offered_bytes / _MIB:.1f} MiB",
            f"{share.rtt_s * 1000:.2f} ms",
            str(share.threads),
        )
    console.print(table)
    for line in placement.explanation:
        console.print(f"- {escape(line)}", highlight=False)
    for endpoint, reason in unreachable.items():
        console.print(f"- worker {escape(endpoint)} unreachable: {escape(reason)}", highlight=False)
    if placement.shares:
        split = ", ".join(f"{value:g}" for value in placement.tensor_split)
        console.print(
            f"llama.cpp: n_gpu_layers={placement.n_gpu_layers}, tensor_split=[{split}]",
            highlight=False,
        )
