"""``aria ledger``: read, verify and export this node's provenance ledger (docs/ledger.md)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from aria.cli.context import CliContext, cli_context, print_json
from aria.errors import InvalidRequest, LedgerTampered

if TYPE_CHECKING:
    from aria.ledger import Ledger, SignedEntry, VerifyReport

app = typer.Typer(
    help="Inspect, verify and export the signed provenance ledger.", no_args_is_help=True
)

AsJson = Annotated[bool, typer.Option("--json", help="Print JSON (shape: docs/cli.md).")]
Since = Annotated[
    str | None,
    typer.Option("--since", help="Only entries since: an ISO date/time, or a span like 24h, 7d."),
]

_SPAN = re.compile(r"^(\d+)\s*([smhdw])$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def since_ms(value: str | None, now: datetime | None = None) -> int | None:
    """``--since`` as Unix milliseconds.

    Raises:
        InvalidRequest: neither a span (``24h``) nor an ISO date or date-time.
    """
    if value is None:
        return None
    now = now or datetime.now(UTC)
    span = _SPAN.match(value.strip().lower())
    if span:
        moment = now - timedelta(**{_UNITS[span.group(2)]: int(span.group(1))})
    else:
        try:
            moment = datetime.fromisoformat(value.strip())
        except ValueError:
            raise InvalidRequest(
                f"--since {value!r} is neither a span like 24h or 7d nor an ISO date/time"
            ) from None
        if moment.tzinfo is None:
            moment = moment.astimezone()  # the operator's local time
    return int(moment.timestamp() * 1000)


def _iso(ms: int | None) -> str | None:
    if ms is None:
        return None
    return datetime.fromtimestamp(ms / 1000).astimezone().isoformat(timespec="seconds")


def _open(cli: CliContext) -> Ledger:
    from aria.ledger import Ledger
    from aria.p2p.identity import load_identity

    return Ledger.open(cli.paths.ledger, signer=load_identity(cli.paths).peer_id)


def summary(entry: SignedEntry) -> dict[str, Any]:
    """One entry as ``aria ledger list`` shows it (``ENTRY_SUMMARY`` in docs/cli.md)."""
    decoded = entry.decoded()
    body = decoded.get("body", {})
    row: dict[str, Any] = {
        "seq": entry.seq,
        "hash": entry.hash,
        "kind": decoded.get("kind"),
        "at": _iso(decoded.get("at_ms")),
        "at_ms": decoded.get("at_ms"),
        "id": body.get("id", body.get("receipt_id")),
    }
    if decoded.get("kind") == "inference":
        energy = body.get("energy", {})
        row |= {
            "role": body.get("role"),
            "origin": body.get("origin"),
            "model": body.get("model", {}).get("id"),
            "where": body.get("ran_on", {}).get("where"),
            "peer": body.get("peer"),
            "prompt_tokens": body.get("prompt_tokens"),
            "completion_tokens": body.get("completion_tokens"),
            "duration_ms": body.get("duration_ms"),
            "joules": energy.get("millijoules", 0) / 1000,
            "energy_source": energy.get("source"),
        }
    elif decoded.get("kind") == "spotcheck":
        row |= {
            "peer": body.get("peer"),
            "model": body.get("model"),
            "verdict": body.get("verdict"),
        }
    elif decoded.get("kind") == "contract":
        row |= {"version": body.get("version"), "contract": body.get("sha256")}
    return row


@app.command("list")
def list_entries(
    ctx: typer.Context,
    kind: Annotated[
        str | None,
        typer.Option(help="inference, countersign, spotcheck, contract or checkpoint."),
    ] = None,
    peer: Annotated[str | None, typer.Option(help="Only entries about this peer id.")] = None,
    since: Since = None,
    limit: Annotated[int, typer.Option(min=1, help="Most entries, newest first.")] = 20,
    as_json: AsJson = False,
) -> None:
    """The newest entries: receipts, countersignatures, spot checks, contract changes."""
    from rich.table import Table

    cli = cli_context(ctx)
    with _open(cli) as ledger:
        found = ledger.entries(kind=kind, peer=peer, since_ms=since_ms(since), limit=limit)
    rows = [summary(e) for e in found]
    if as_json:
        print_json({"entries": rows})
        return
    if not rows:
        cli.console.print("no entries")
        return
    table = Table(title=f"ledger: {len(rows)} newest entr{'y' if len(rows) == 1 else 'ies'}")
    for column in ("#", "time", "kind", "model", "where / peer", "tokens", "joules", "id"):
        table.add_column(column, overflow="fold")
    for row in rows:
        if row["kind"] == "inference":
            where = f"{row['role']} {row['where']}" + (f" {row['peer']}" if row["peer"] else "")
            tokens = f"{row['prompt_tokens']}+{row['completion_tokens']}"
            joules = f"{row['joules']:.3f} {'(est.)' if row['energy_source'] == 'estimate' else ''}"
        else:
            where = row.get("peer") or row.get("verdict") or ""
            tokens = joules = ""
        table.add_row(
            str(row["seq"]),
            str(row["at"]),
            str(row["kind"]),
            str(row.get("model") or ""),
            str(where),
            tokens,
            joules,
            str(row["id"] or row["hash"][:16]),
        )
    cli.console.print(table)


@app.command("show")
def show(
    ctx: typer.Context,
    ref: Annotated[str, typer.Argument(help="Entry number, receipt id, or hash (8+ hex).")],
    as_json: AsJson = False,
) -> None:
    """One entry in full, with its hash and signature."""
    import json

    cli = cli_context(ctx)
    with _open(cli) as ledger:
        entry = ledger.find(ref)
    if entry is None:
        raise InvalidRequest(f"no ledger entry {ref!r} (see `aria ledger list`)")
    decoded = entry.decoded()
    payload = {
        "seq": entry.seq,
        "hash": entry.hash,
        "sig": entry.sig,
        "at": _iso(decoded.get("at_ms")),
        "entry": decoded,
    }
    if as_json:
        print_json(payload)
        return
    cli.console.print_json(json.dumps(payload))


def _verify_report(report: VerifyReport, source: str) -> dict[str, Any]:
    return {"source": source, **report.to_json()}


@app.command("verify")
def verify(
    ctx: typer.Context,
    files: Annotated[
        list[Path] | None,
        typer.Option(
            "--file",
            help="Verify an export instead of this node's ledger (repeat for archives, "
            "oldest first).",
        ),
    ] = None,
    signer: Annotated[
        str | None,
        typer.Option(help="The peer id the export must be signed by (default: its header's)."),
    ] = None,
    as_json: AsJson = False,
) -> None:
    """Check every entry: hashes, links, signatures, peers' countersignatures, the signed
    head. Names the first bad entry and exits with status 9 when one is found."""
    from aria.ledger import verify_exports

    cli = cli_context(ctx)
    if files:
        report = verify_exports(files, signer=signer)
        source = ", ".join(str(f) for f in files)
    else:
        with _open(cli) as ledger:
            report = ledger.verify()
            source = str(ledger.path)
    payload = _verify_report(report, source)
    if as_json:
        print_json(payload)
    elif report.ok:
        cli.console.print(
            f"ok: {report.entries} entries (#{report.first_seq}..#{report.last_seq}, anchored by "
            f"{report.anchor}), all signed by {report.signer}",
            highlight=False,
            soft_wrap=True,
        )
    if not report.ok:
        problem = report.problem
        assert problem is not None
        raise LedgerTampered(f"entry #{problem.seq} is bad ({problem.reason}): {problem.detail}")


@app.command("export")
def export(
    ctx: typer.Context,
    path: Annotated[Path, typer.Argument(help="File to write (JSON Lines).")],
    as_json: AsJson = False,
) -> None:
    """Write the ledger as a portable file anyone can verify (format: docs/ledger.md)."""
    from aria.ledger import write_export

    cli = cli_context(ctx)
    with _open(cli) as ledger:
        count = write_export(path, ledger.rows(), signer=ledger.signer, head=ledger.head())
        first, head = ledger.first_seq(), ledger.head()
        signer = ledger.signer
    payload = {
        "path": str(path.resolve()),
        "entries": count,
        "signer": signer,
        "first_seq": first,
        "last_seq": head.seq if head else None,
    }
    if as_json:
        print_json(payload)
        return
    cli.console.print(
        f"exported {count} entries to {path} (signed by {signer})", highlight=False, soft_wrap=True
    )


@app.command("energy")
def energy(ctx: typer.Context, since: Since = None, as_json: AsJson = False) -> None:
    """Energy and tokens per model, per peer, and served vs consumed vs local."""
    from rich.table import Table

    cli = cli_context(ctx)
    start = since_ms(since)
    with _open(cli) as ledger:
        totals = ledger.totals(since_ms=start)
    payload = {
        "since": _iso(start),
        "sources": totals.sources(),
        "by_role": totals.rollup("role"),
        "by_model": totals.rollup("model"),
        "by_peer": [row for row in totals.rollup("peer") if row["peer"] is not None],
        "groups": totals.to_json()["groups"],
    }
    if as_json:
        print_json(payload)
        return
    if not totals.groups:
        cli.console.print("no receipts" + (f" since {payload['since']}" if start else ""))
        return
    estimated = "estimate" in payload["sources"]
    for title, key, rows in (
        (
            "by role (local: for this machine; served: for peers; consumed: by peers)",
            "role",
            payload["by_role"],
        ),
        ("by model", "model", payload["by_model"]),
        ("by peer", "peer", payload["by_peer"]),
    ):
        if not rows:
            continue
        table = Table(title=title)
        for column in (key, "requests", "tokens", "joules", "tokens/J"):
            table.add_column(column, overflow="fold")
        for row in rows:
            rate = row["tokens_per_joule"]
            table.add_row(
                str(row[key]),
                str(row["requests"]),
                str(row["prompt_tokens"] + row["completion_tokens"]),
                f"{row['joules']:.3f}",
                f"{rate:.1f}" if rate is not None else "-",
            )
        cli.console.print(table)
    if estimated:
        cli.err.print(
            "[yellow]note:[/] some figures are ESTIMATES (CPU time x TDP per core: no readable "
            "RAPL counters); `aria ledger show ID` gives each receipt's label",
            highlight=False,
        )
