"""``aria node``: the node's lifecycle (start, stop, id) and its profile."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any

import typer

from aria.cli.consent import app as consent_app
from aria.cli.context import cli_context, print_json
from aria.profiles import describe_profiles, enabled_tiers

app = typer.Typer(help="Run and configure this ARIA node.", no_args_is_help=True)

AsJson = Annotated[bool, typer.Option("--json", help="Print JSON (shape: docs/cli.md).")]
profile_app = typer.Typer(help="Show or set the profile preset.", no_args_is_help=True)
app.add_typer(profile_app, name="profile")
app.add_typer(consent_app, name="consent")


@profile_app.command("show")
def profile_show(ctx: typer.Context, as_json: AsJson = False) -> None:
    """Show the active profile and the tiers each preset enables."""
    from rich.table import Table

    from aria.hardware import detect

    cli = cli_context(ctx)
    described = describe_profiles(cli.settings.node.profile, gpu_available=detect().gpu_available)
    if as_json:
        print_json(described)
        return
    table = Table(title=f"Profiles (active: {described['active']})")
    table.add_column("profile")
    table.add_column("tiers enabled on this machine")
    for profile in described["profiles"]:
        marker = "* " if profile["active"] else "  "
        table.add_row(marker + profile["name"], ", ".join(profile["tiers"]))
    cli.console.print(table)


@profile_app.command("set")
def profile_set(
    ctx: typer.Context, name: str = typer.Argument(..., help="Profile preset.")
) -> None:
    """Persist the profile preset in the node's config."""
    cli = cli_context(ctx)
    enabled_tiers(name, gpu_available=False)  # validates the name (ConfigError otherwise)
    cli.update("node", profile=name)
    cli.console.print(f"profile set to [bold]{name}[/]")


@app.command("start")
def start(
    ctx: typer.Context,
    port: int | None = typer.Option(
        None,
        "--port",
        min=0,
        max=65535,
        help="TCP port of the libp2p host (default: config, 8765).",
    ),
    host: str = typer.Option("0.0.0.0", "--host", help="Address the libp2p host listens on."),
    bootstrap: Annotated[
        list[str] | None,
        typer.Option(
            "--bootstrap", help="Bootstrap peer multiaddr (/ip4/.../tcp/.../p2p/...); repeatable."
        ),
    ] = None,
    relay: bool | None = typer.Option(
        None, "--relay/--no-relay", help="Relay circuits for private peers (public nodes only)."
    ),
    no_mdns: bool = typer.Option(False, "--no-mdns", help="Do not discover peers on the LAN."),
) -> None:
    """Run the P2P node in the foreground until Ctrl-C or `aria node stop`."""
    from aria.library.service import library_service
    from aria.p2p.options import NodeOptions
    from aria.p2p.runner import run_node

    cli = cli_context(ctx)
    p2p = cli.settings.p2p
    options = NodeOptions(
        port=p2p.port if port is None else port,
        listen_host=host,
        bootstrap=tuple(dict.fromkeys([*p2p.bootstrap, *(bootstrap or [])])),
        relay=p2p.relay if relay is None else relay,
        mdns=p2p.mdns and not no_mdns,
        lan=p2p.lan,
        announce=tuple(p2p.announce),
        max_connections=p2p.max_connections,
        max_per_ip=p2p.max_per_ip,
        max_per_subnet=p2p.max_per_subnet,
        max_unverified=p2p.max_unverified,
    )

    def ready(status: object) -> None:
        from aria.p2p.views import NetworkStatus

        assert isinstance(status, NetworkStatus)
        cli.console.print(
            f"node [bold]{status.peer_id}[/] running (Ctrl-C to stop)", soft_wrap=True
        )
        for addr in status.listen_addrs:
            cli.console.print(f"  listening on {addr}", highlight=False, soft_wrap=True)

    run_node(cli.paths, cli.settings, options, on_ready=ready, services=(library_service,))
    cli.console.print("node stopped")


@app.command("stop")
def stop(
    ctx: typer.Context,
    timeout: float = typer.Option(
        20.0, "--timeout", min=1, help="Seconds to wait for a clean stop."
    ),
) -> None:
    """Stop the node running on this ARIA home (it withdraws its advert first)."""
    from aria.p2p.lifecycle import stop_node

    cli = cli_context(ctx)
    pid = stop_node(cli.paths, timeout_s=timeout)
    cli.console.print(f"node stopped (pid {pid})")


@app.command("id")
def node_id(ctx: typer.Context) -> None:
    """Print this node's peer id (from its identity key; the node need not run)."""
    from aria.p2p.identity import load_identity

    typer.echo(load_identity(cli_context(ctx).paths).peer_id)


class Switch(StrEnum):
    """``on``/``off`` values of ``aria node share``."""

    ON = "on"
    OFF = "off"


@app.command("share")
def share(
    ctx: typer.Context,
    inference: Annotated[
        Switch | None, typer.Option("--inference", help="Accept inference requests from peers.")
    ] = None,
    rpc: Annotated[
        Switch | None,
        typer.Option("--rpc", help="Lend this machine's compute to peers' split inference."),
    ] = None,
    rpc_peer: Annotated[
        list[str] | None,
        typer.Option(
            "--rpc-peer",
            metavar="PEER_ID",
            help="A peer id that may borrow compute (repeatable; replaces the list). "
            "'*' lets any verified peer borrow.",
        ),
    ] = None,
    use_peers: Annotated[
        Switch | None,
        typer.Option(
            "--use-peers", help="Let this machine send prompts to peers and fetch models from them."
        ),
    ] = None,
    library: Annotated[
        Switch | None,
        typer.Option("--library", help="Serve published model files to peers' libraries."),
    ] = None,
    as_json: AsJson = False,
) -> None:
    """Show or change what this node shares with peers: a shortcut to the consent
    contract's clauses (``lend.tasks`` inference/split/library, ``lend.split_peers``,
    ``use.prompts_may_leave``; all of them: `aria node consent`). A change is signed as a
    new contract version and sent to the running node, which applies it at once."""
    from aria.cli.consent import in_force, report_running, sign_and_apply
    from aria.consent import shares_of, with_shares

    cli = cli_context(ctx)
    contract = in_force(cli).contract
    changes: dict[str, Any] = {}
    for name, switch in (
        ("share_inference", inference),
        ("share_rpc", rpc),
        ("use_peers", use_peers),
        ("share_library", library),
    ):
        if switch is not None:
            changes[name] = switch is Switch.ON
    if rpc_peer is not None:
        changes["rpc_peers"] = rpc_peer
    running = None
    changed = with_shares(contract, changes)
    asked = changed != contract
    if asked:
        loaded, running = sign_and_apply(cli, changed)
        contract = loaded.contract
    lend = contract.lend
    summary = {
        **shares_of(contract),
        "rpc_idle_timeout_s": cli.settings.consent.rpc_idle_timeout_s,
        "rpc_session_max_s": cli.settings.consent.rpc_session_max_s,
        "rpc_session_max_gb": cli.settings.consent.rpc_session_max_gb,
        "library_max_uploads": cli.settings.consent.library_max_uploads,
        "library_upload_mbps": cli.settings.consent.library_upload_mbps,
        "library_peer_mbps": cli.settings.consent.library_peer_mbps,
        "library_peer_gb_per_day": cli.settings.consent.library_peer_gb_per_day,
        "contract": {"version": contract.version, "sha256": contract.sha256},
        "running_node": running,
    }
    if as_json:
        print_json(summary)
        return

    def word(flag: bool) -> str:
        return "on" if flag else "off"

    borrowers = ", ".join(lend.split_peers) if lend.split_peers else "nobody yet"
    cli.console.print(
        f"inference sharing {word(contract.lends('inference'))} "
        f"(max {lend.max_jobs} jobs, {lend.max_tokens} tokens), "
        f"rpc sharing {word(contract.lends('split'))} ({lend.ram_gb:g} GB, "
        f"borrowers: {borrowers}), library sharing {word(contract.lends('library'))}, "
        f"use peers {word(contract.use.prompts_may_leave)} "
        f"(consent contract version {contract.version})",
        highlight=False,
        soft_wrap=True,
    )
    if asked:
        report_running(cli, running)
