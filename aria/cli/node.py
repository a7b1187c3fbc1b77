"""``aria node``: the node's profile (and, with the p2p layer, its lifecycle)."""

from __future__ import annotations

import typer

from aria.cli.context import cli_context
from aria.profiles import PROFILE_TIERS, enabled_tiers

app = typer.Typer(help="Run and configure this ARIA node.", no_args_is_help=True)
profile_app = typer.Typer(help="Show or set the profile preset.", no_args_is_help=True)
app.add_typer(profile_app, name="profile")


@profile_app.command("show")
def profile_show(ctx: typer.Context) -> None:
    """Show the active profile and the tiers each preset enables."""
    from rich.table import Table

    from aria.hardware import detect

    cli = cli_context(ctx)
    active = cli.settings.node.profile
    gpu = detect().gpu_available
    table = Table(title=f"Profiles (active: {active})")
    table.add_column("profile")
    table.add_column("tiers enabled on this machine")
    for name in PROFILE_TIERS:
        marker = "* " if name == active else "  "
        tiers = ", ".join(t.value for t in enabled_tiers(name, gpu_available=gpu))
        table.add_row(marker + name, tiers)
    cli.console.print(table)


@profile_app.command("set")
def profile_set(ctx: typer.Context, name: str = typer.Argument(..., help="Profile preset.")) -> None:
    """Persist the profile preset in the node's config."""
    cli = cli_context(ctx)
    enabled_tiers(name, gpu_available=False)  # validates the name (ConfigError otherwise)
    cli.settings.node.profile = name
    cli.save()
    cli.console.print(f"profile set to [bold]{name}[/]")
