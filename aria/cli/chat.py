"""``aria chat`` and ``aria infer``: talk to a model without starting a server.

Both run a :class:`~aria.node.Node` in this process (the model itself runs in its
worker process, as behind the API) and stream tokens as they are generated. Where the
answer runs is the node's one placement decision, as for the API: here, on a peer (with
``use.prompts_may_leave``, through the node running on this home) or split over peers; a
note on stderr says where when it is not this machine alone. ``aria chat`` uses the local
memory unless ``--no-memory`` (docs/memory.md): it recalls what matters for each message,
learns what the user asks it to remember, fits a long conversation to the model's window
and shows reminders the moment they fire; a message answered by a peer carries no memory.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from contextlib import aclosing
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.markup import escape

from aria.cli.context import CliContext, cli_context, console_for, parse_placement
from aria.errors import RequestError

if TYPE_CHECKING:
    from aria.backends import DoneEvent, GenerationJob
    from aria.catalog import CatalogEntry
    from aria.node import Node, Prepare
    from aria.router import Preference
    from aria.split import Placement

_EXIT_COMMANDS = frozenset({"/exit", "/quit"})

ModelOption = Annotated[
    str | None, typer.Option("--model", "-m", help="Model id (default: the profile's choice).")
]
MaxTokens = Annotated[int, typer.Option("--max-tokens", min=1, help="Most tokens per answer.")]
Temperature = Annotated[float, typer.Option(min=0.0, max=2.0, help="Sampling temperature.")]
PlacementOption = Annotated[
    str | None,
    typer.Option(
        "--placement",
        help="Where to run first: local-first, peers-first or local-only "
        "(default: node.placement; peers only with use.prompts_may_leave).",
    ),
]


def register(app: typer.Typer) -> None:
    app.command("chat")(chat)
    app.command("infer")(infer)


@dataclass(frozen=True)
class Answer:
    text: str
    model: str
    tier: str
    done: DoneEvent | None
    ttft_s: float | None
    decode_s: float
    split: Placement | None = None  # set when the model ran split over peers
    served_by: str | None = None  # the peer that ran it
    route: str = ""
    entry: CatalogEntry | None = None  # the model that answered

    @property
    def tokens_per_second(self) -> float | None:
        tokens = self.done.completion_tokens if self.done else 0
        return (tokens - 1) / self.decode_s if tokens > 1 and self.decode_s > 0 else None

    def stats(self) -> str:
        tokens = self.done.completion_tokens if self.done else 0
        rate = self.tokens_per_second
        speed = f"{rate:.1f} tok/s" if rate is not None else "- tok/s"
        where = f" · peer {self.served_by}" if self.served_by else ""
        return f"{self.model} · {self.tier}{where} · {tokens} tokens · {speed}"


async def _answer(
    node: Node,
    job: GenerationJob,
    model: str | None,
    on_text: Callable[[str], None],
    *,
    distributed: bool = False,
    placement: Preference | None = None,
    prepare: Prepare | None = None,
) -> Answer:
    from aria.backends import DoneEvent, TokenEvent

    started = time.perf_counter()
    first: float | None = None
    parts: list[str] = []
    done = None
    from aria.ledger import Provenance

    generating = node.generate(
        job,
        model,
        distributed=distributed,
        placement=placement,
        provenance=Provenance("cli"),
        prepare=prepare,
    )
    async with await generating as served:
        if served.resolution.notice:
            _note(served.resolution.notice)
        if served.served_by is not None:
            _note(f"served by peer {served.served_by} ({served.model_id})")
        if served.split is not None:
            _note(f"split over peers ({served.split_header()}):")
            for line in served.split.explanation:
                _note(f"  {line}")
        async with aclosing(served.events()) as events:
            async for event in events:
                if isinstance(event, TokenEvent):
                    first = first or time.perf_counter()
                    parts.append(event.text)
                    on_text(event.text)
                elif isinstance(event, DoneEvent):
                    done = event
    end = time.perf_counter()
    return Answer(
        text="".join(parts),
        model=served.model_id,
        tier=served.entry.tier.value,
        done=done,
        ttft_s=None if first is None else first - started,
        decode_s=0.0 if first is None else end - first,
        split=served.split,
        served_by=served.served_by,
        route=served.route_header(),
        entry=served.entry,
    )


def _note(message: str) -> None:
    console_for(stderr=True).print(f"[yellow]note:[/] {escape(message)}", highlight=False)


def _write(text: str) -> None:
    sys.stdout.write(text)
    sys.stdout.flush()


def _node(cli: CliContext) -> Node:
    from aria.cli.recording import open_records
    from aria.node import Node

    records = open_records(cli.paths, cli.settings)
    return Node.create(
        cli.paths, cli.settings, recorder=records.recorder, contracts=records.contracts
    )


def infer(
    ctx: typer.Context,
    prompt: Annotated[str, typer.Argument(help="What to ask.")],
    model: ModelOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
    max_tokens: MaxTokens = 512,
    temperature: Temperature = 0.7,
    seed: Annotated[int | None, typer.Option(help="Sampling seed (reproducible output).")] = None,
    placement: PlacementOption = None,
) -> None:
    """Answer one prompt, streaming the tokens (no server needed; peers only if allowed)."""
    answer_prompt(
        cli_context(ctx),
        prompt,
        model,
        as_json=as_json,
        max_tokens=max_tokens,
        temperature=temperature,
        seed=seed,
        placement=parse_placement(placement),
    )


def answer_prompt(
    cli: CliContext,
    prompt: str,
    model: str | None,
    *,
    as_json: bool,
    max_tokens: int,
    temperature: float,
    seed: int | None = None,
    distributed: bool | None = None,
    placement: Preference | None = None,
) -> None:
    """Answer one prompt in-process: stream it (or print one JSON object) plus stats.

    ``distributed`` is ``aria model run``'s flag: when given, the JSON also reports the
    split plan (``null`` when the model ran here).
    """
    import trio

    from aria.backends import GenerationJob

    node = _node(cli)
    job = GenerationJob(
        messages=({"role": "user", "content": prompt},),
        max_tokens=max_tokens,
        temperature=temperature,
        seed=seed,
    )

    async def run() -> Answer:
        async with node.running():
            on_text = (lambda _: None) if as_json else _write
            return await _answer(
                node, job, model, on_text, distributed=bool(distributed), placement=placement
            )

    answer = trio.run(run)
    if as_json:
        payload = _as_json(answer)
        if distributed is not None:
            payload["split"] = answer.split.to_dict() if answer.split is not None else None
        typer.echo(json.dumps(payload, ensure_ascii=False))
    else:
        _write("\n")
        cli.err.print(f"[dim]{escape(answer.stats())}[/]", highlight=False)


def _as_json(answer: Answer) -> dict[str, Any]:
    done = answer.done
    return {
        "model": answer.model,
        "tier": answer.tier,
        "text": answer.text,
        "finish_reason": done.finish_reason if done else None,
        "usage": {
            "prompt_tokens": done.prompt_tokens if done else 0,
            "completion_tokens": done.completion_tokens if done else 0,
        },
        "ttft_s": answer.ttft_s,
        "tokens_per_second": answer.tokens_per_second,
        "served_by": answer.served_by,
        "route": answer.route,
    }


def _read_line() -> str | None:
    try:
        return input("you> ")
    except EOFError:
        return None


def chat(
    ctx: typer.Context,
    model: ModelOption = None,
    system: Annotated[str | None, typer.Option(help="A system prompt for the session.")] = None,
    max_tokens: MaxTokens = 512,
    temperature: Temperature = 0.7,
    placement: PlacementOption = None,
    memory: Annotated[
        bool | None,
        typer.Option("--memory/--no-memory", help="Use your local memory (default: on)."),
    ] = None,
) -> None:
    """Chat in the terminal; the conversation is kept until /exit (or Ctrl+D)."""
    import trio

    from aria.backends import GenerationJob

    cli = cli_context(ctx)
    prefer = parse_placement(placement)
    node = _node(cli)
    settings = cli.settings.memory
    remembering = settings.enabled and (settings.chat if memory is None else memory)
    history: list[dict[str, Any]] = [{"role": "system", "content": system}] if system else []

    from aria.cli.chat_memory import ChatMemory

    async def session() -> None:
        async with node.running(), ChatMemory.open(cli, node, remembering) as recall:
            cli.console.print("[dim]Type /exit (or press Ctrl+D) to leave.[/]")
            if recall is None:
                cli.console.print("[dim]Memory is off for this chat.[/]")
            while True:
                # Abandon the blocked input() on Ctrl+C. (trio-typing, pulled in by libp2p,
                # ships stubs older than this trio keyword.)
                line = await trio.to_thread.run_sync(
                    _read_line,
                    abandon_on_cancel=True,  # type: ignore[call-arg]
                )
                if line is None or line.strip() in _EXIT_COMMANDS:
                    return
                if not line.strip():
                    continue
                history.append({"role": "user", "content": line})
                turn = await recall.begin(history) if recall else None
                job = GenerationJob(
                    messages=tuple(history), max_tokens=max_tokens, temperature=temperature
                )
                prepare = recall.prepare(turn) if recall and turn else None
                try:
                    answer = await _answer(
                        node, job, model, _write, placement=prefer, prepare=prepare
                    )
                except RequestError as exc:  # e.g. the conversation outgrew the context
                    history.pop()
                    cli.err.print(f"[bold red]error:[/] {escape(exc.message)}", highlight=False)
                    continue
                history.append({"role": "assistant", "content": answer.text})
                _write("\n")
                if turn and answer.served_by is not None:
                    turn.withhold()  # the peer got the conversation without any memory
                stats = answer.stats() + (recall.stats(turn) if recall and turn else "")
                cli.console.print(f"[dim]\\[{escape(stats)}][/]", highlight=False)
                if recall and turn:
                    here = answer.split is None and answer.served_by is None
                    await recall.end(turn, answer.text, answer.entry, local=here)

    trio.run(session)
