"""``aria route "query"``: explain which model the SmartRouter would pick, and why.

Nothing is loaded or generated: the command builds the same inputs the API builds (the
catalog, the store's installed models, the profile, the GPU, the routing table with the
operator's override) and prints the decision and its fallback chain.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.markup import escape

from aria.cli.context import CliContext, cli_context
from aria.errors import InvalidRequest

if TYPE_CHECKING:
    from aria.router import Availability, RoutingDecision, RoutingTable

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
    as_json: Annotated[bool, typer.Option("--json", help="Print the decision as JSON.")] = False,
) -> None:
    """Explain the routing decision for QUERY: category, model, reason and fallbacks."""
    from aria.router import RouteRequest, route

    if not query.strip():
        raise InvalidRequest("the query is empty; give the text a user would send")
    cli = cli_context(ctx)
    available, table = _inputs(cli, profile or cli.settings.node.profile)
    content: Any = query
    if image:
        content = [{"type": "text", "text": query}, {"type": "image_url", "image_url": {}}]
    body: dict[str, Any] = {"messages": [{"role": "user", "content": content}]}
    if tools:
        body["tools"] = [{"type": "function", "function": {"name": "lookup", "parameters": {}}}]
    decision = route(RouteRequest.from_openai(body), table, available)
    if as_json:
        typer.echo(json.dumps(_as_dict(decision, available), indent=2, ensure_ascii=False))
    else:
        _print(cli, decision, available)


def _inputs(cli: CliContext, profile: str) -> tuple[Availability, RoutingTable]:
    """The node's availability under ``profile`` and its routing table."""
    from aria.backends import find_bitnet_server
    from aria.backends.launch import DEFAULT_CONTEXT_CAP
    from aria.catalog import ModelId, load_catalog, load_denylist
    from aria.hardware import detect
    from aria.router import Availability, load_routing_table
    from aria.store import ModelStore

    catalog = load_catalog()
    installed = [m.entry for m in ModelStore(cli.paths, catalog, load_denylist()).installed()]
    available = Availability.build(
        profile=profile,
        gpu=detect().gpu_available,
        catalog=catalog.entries,
        installed=installed,
        default_model=ModelId(catalog.default_model_id),
        context_cap=cli.settings.inference.context_length or DEFAULT_CONTEXT_CAP,
        bitnet_cpp=find_bitnet_server(cli.settings.inference.bitnet_server) is not None,
    )
    known = [entry.id for entry in (*catalog.entries, *installed)]
    return available, load_routing_table(cli.paths, known_models=known)


def _chain(decision: RoutingDecision, available: Availability) -> list[dict[str, Any]]:
    return [
        {
            "model": model,
            "tier": available.entries[model].tier.value,
            "installed": model in available.installed,
            "native_1bit": available.entries[model].native_1bit,
            "last_resort": model == available.default_model,
        }
        for model in decision.chain
    ]


def _as_dict(decision: RoutingDecision, available: Availability) -> dict[str, Any]:
    return {
        "category": decision.category.value,
        "confidence": decision.confidence,
        "model": decision.model_id,
        "tier": decision.tier.value,
        "profile": available.profile,
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
        state = "installed" if link["installed"] else "not installed"
        extra = ", 1-bit" if link["native_1bit"] else ""
        extra += ", last resort" if link["last_resort"] else ""
        out.print(f"  {index}. {escape(link['model'])} ({link['tier']}{extra}) - {state}")
    scores = "  ".join(f"{c.value} {p:.2f}" for c, p in decision.scores.items())
    out.print(f"text       {scores}")
