"""``aria model run ID [PROMPT]``: answer one prompt with one installed model.

Like ``aria infer --model ID`` (the same placement decision: here, on a peer that offers
it with ``use.prompts_may_leave``, or split) but greedy by default and able to force split
inference:
``--distributed`` spreads every block of the model over the peers that lend compute
(found through the node running on this ARIA home), even when it would fit here. A
model too big for this node's memory budget is split without the flag. The plan's
explanation goes to stderr, the answer to stdout.
"""

from __future__ import annotations

from typing import Annotated

import typer

from aria.cli.chat import MaxTokens, PlacementOption, Temperature, answer_prompt
from aria.cli.context import cli_context, parse_placement

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
    placement: PlacementOption = None,
) -> None:
    """Answer PROMPT with MODEL_ID (greedy unless --temperature), split over peers if needed."""
    answer_prompt(
        cli_context(ctx),
        prompt,
        model_id,
        as_json=as_json,
        max_tokens=max_tokens,
        temperature=temperature,
        distributed=distributed,
        placement=parse_placement(placement),
    )
