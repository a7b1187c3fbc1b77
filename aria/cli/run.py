"""``aria model run ID [PROMPT]``: answer one prompt with one installed model.

Like ``aria infer --model ID`` but greedy by default and able to force split inference:
``--distributed`` spreads every block of the model over the peers that lend compute
(found through the node running on this ARIA home), even when it would fit here. A
model too big for this node's memory budget is split without the flag. The plan's
explanation goes to stderr, the answer to stdout.
"""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.markup import escape

from aria.cli.chat import Answer, MaxTokens, Temperature, _answer, _as_json, _node, _write
from aria.cli.context import cli_context

__all__ = ["run_command"]


def run_command(
    ctx: typer.Context,
    model_id: Annotated[str, typer.Argument(help="Installed model id.")],
    prompt: Annotated[str, typer.Argument(help="What to ask.")] = "Hello!",
    distributed: Annotated[
        bool,
        typer.Option(
            "--distributed",
            help="Split the model over peers that lend compute, even if it fits here.",
        ),
    ] = False,
    max_tokens: MaxTokens = 128,
    temperature: Temperature = 0.0,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Answer PROMPT with MODEL_ID (greedy unless --temperature), split over peers if needed."""
    import trio

    from aria.backends import GenerationJob

    cli = cli_context(ctx)
    node = _node(cli)
    job = GenerationJob(
        messages=({"role": "user", "content": prompt},),
        max_tokens=max_tokens,
        temperature=temperature,
    )

    async def run() -> Answer:
        async with node.running():
            on_text = (lambda _: None) if as_json else _write
            return await _answer(node, job, model_id, on_text, distributed=distributed)

    answer = trio.run(run)
    if as_json:
        split = answer.split.to_dict() if answer.split is not None else None
        typer.echo(json.dumps({**_as_json(answer), "split": split}, ensure_ascii=False))
    else:
        _write("\n")
        cli.err.print(f"[dim]{escape(answer.stats())}[/]", highlight=False)
