"""``aria route "query"``: explain where the node would run a query, and why.

Nothing is loaded or generated: the command asks the node the API and ``aria infer``
ask (:meth:`aria.node.Node.route`, the one placement decision) — the catalog, the
store's installed models, the profile, the GPU, the memory budget, the routing table
with the operator's override and, with ``use.prompts_may_leave``, the peers' offers as the
node running on this home reports them — and prints the decision and its chain, each
entry with where it would run: here, on a peer, or split over peers.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.markup import escape

from aria.cli.context import CliContext, cli_context, parse_placement
from aria.errors import InvalidRequest

if TYPE_CHECKING:
    from aria.router import Availability, RoutingDecision

__all__ = ["register"]


def register(app: typer.Typer) -> None:
    app.command("route")(route_command)


def route_command(
    ctx: typer.Context,
    query: Annotated[str, typer.Argument(help="The query to route, as a user would send it.")],
    profile: Annotated[
        str | None, typer.Option("--profile", "-p", help="Profile preset (default: the node's).")
    ] = None,
    image: Annotated[
        bool, typer.Option("--image", help="Route as if the message carried an image part.")
    ] = False,
    tools: Annotated[
        bool, typer.Option("--tools", help="Route as if the request declared tools.")
    ] = False,
    placement: Annotated[
        str | None,
        typer.Option("--placement", help="local-first, peers-first or local-only."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the decision as JSON.")] = False,
) -> None:
    """Explain the routing decision for QUERY: category, chain (where each entry runs), reason."""
    import trio

    from aria.backends import GenerationJob
    from aria.node import Node
    from aria.router import load_routing_table

    if not query.strip():
        raise InvalidRequest("the query is empty; give the text a user would send")
    cli = cli_context(ctx)
    settings = cli.settings
    if profile is not None:
        settings = settings.model_copy(
            update={"node": settings.node.model_copy(update={"profile": profile})}
        )
    node = Node.create(cli.paths, settings)
    known = [entry.id for entry in (*node.catalog.entries, *node.available().entries.values())]
    load_routing_table(cli.paths, known_models=known)  # an override naming no model: say so
    prefer = parse_placement(placement)
    content: Any = query
    if image:
        content = [{"type": "text", "text": query}, {"type": "image_url", "image_url": {}}]
    tool = {"type": "function", "function": {"name": "lookup", "parameters": {}}}
    job = GenerationJob(
        messages=({"role": "user", "content": content},), tools=(tool,) if tools else ()
    )
    if node.uses_peers(prefer):
        trio.run(node.providers.refresh)
    available = node.available(prefer)
    decision = node.route(job, prefer)
    if as_json:
        typer.echo(json.dumps(_as_dict(decision, available), indent=2, ensure_ascii=False))
    else:
        _print(cli, decision, available)


def _chain(decision: RoutingDecision, available: Availability) -> list[dict[str, Any]]:
    from aria.router import OnPeer, Split

    links = []
    for link in decision.entries:
        entry = available.entries[link.model_id]
        where = link.where
        kind = (
            "peer"
            if isinstance(where, OnPeer)
            else "split"
            if isinstance(where, Split)
            else "local"
        )
        links.append(
            {
                "model": link.model_id,
                "where": kind,
                "peer_id": where.peer_id if isinstance(where, OnPeer) else None,
                "tier": entry.tier.value,
                "installed": link.model_id in available.installed,
                "native_1bit": entry.native_1bit,
                "last_resort": link.model_id == available.default_model,
            }
        )
    return links


def _as_dict(decision: RoutingDecision, available: Availability) -> dict[str, Any]:
    return {
        "category": decision.category.value,
        "confidence": decision.confidence,
        "model": decision.model_id,
        "tier": decision.tier.value,
        "profile": available.profile,
        "placement": available.prefer,
        "tiers": [tier.value for tier in available.tiers],
        "reason": decision.reason,
        "notice": decision.notice,
        "chain": _chain(decision, available),
        "text_scores": {c.value: round(p, 4) for c, p in decision.scores.items()},
    }


def _print(cli: CliContext, decision: RoutingDecision, available: Availability) -> None:
    out = cli.console
    tiers = ", ".join(tier.value for tier in available.tiers)
    confidence = f"confidence {decision.confidence:.2f}"
    out.print(f"category   [bold]{decision.category.value}[/] ({confidence})")
    out.print(f"profile    {available.profile} (tiers: {tiers})")
    out.print(f"model      [bold]{escape(decision.model_id)}[/] ({decision.tier.value})")
    out.print(f"reason     {escape(decision.reason)}")
    if decision.notice:
        out.print(f"[yellow]notice[/]     {escape(decision.notice)}")
    out.print("chain")
    for index, link in enumerate(_chain(decision, available), 1):
        if link["where"] == "peer":
            state = f"on peer {link['peer_id']}"
        elif link["where"] == "split":
            state = "split over peers that lend compute (too big for this node's budget)"
        else:
            state = "here" if link["installed"] else "here, not installed"
        extra = ", 1-bit" if link["native_1bit"] else ""
        extra += ", last resort" if link["last_resort"] else ""
        out.print(f"  {index}. {escape(link['model'])} ({link['tier']}{extra}) - {escape(state)}")
    scores = "  ".join(f"{c.value} {p:.2f}" for c, p in decision.scores.items())
    out.print(f"text       {scores}")
