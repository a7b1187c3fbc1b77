"""``aria node consent``: show, set and edit the signed consent contract (docs/consent.md).

Every change is validated, given the next version, signed with the node's key, recorded
in the ledger, and sent to the running node, which applies it at once.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, get_args, get_origin

import typer

from aria.cli.context import CliContext, abort, cli_context, print_json
from aria.errors import ContractError

if TYPE_CHECKING:
    from aria.consent import Contract, InForce

app = typer.Typer(
    help="Show or change what peers may do with this machine (the signed consent contract).",
    no_args_is_help=True,
)

AsJson = Annotated[bool, typer.Option("--json", help="Print JSON (shape: docs/cli.md).")]

_TRUE = {"true", "on", "yes", "1"}
_FALSE = {"false", "off", "no", "0"}


def in_force(cli: CliContext) -> InForce:
    """The contract in force (created from ``[consent]`` on first use)."""
    from aria.p2p.consent_change import current_contract

    return current_contract(cli.paths, cli.settings)


def _payload(
    cli: CliContext, loaded: InForce, running: dict[str, Any] | None = None
) -> dict[str, Any]:
    from aria.consent import contract_path

    return {
        "path": str(contract_path(cli.paths)),
        "version": loaded.contract.version,
        "sha256": loaded.sha256,
        "signed": loaded.signed,
        "problem": loaded.problem,
        "contract": loaded.contract.model_dump(mode="json"),
        "running_node": running,
    }


def parse_value(text: str, annotation: Any) -> Any:
    """A command-line value for a clause: lists comma-separated, ``none`` for no limit.

    Raises:
        ContractError: a yes/no clause given something else.
    """
    args = get_args(annotation)
    lowered = text.strip().lower()
    if type(None) in args:
        if lowered in {"none", "null", ""}:
            return None
        annotation = next(a for a in args if a is not type(None))
    if get_origin(annotation) is tuple:
        return [item.strip() for item in text.split(",") if item.strip()]
    if annotation is bool:
        if lowered in _TRUE | _FALSE:
            return lowered in _TRUE
        raise ContractError(f"{text!r} is not true or false")
    return text.strip()  # numbers: the contract's validation converts and checks the range


def with_clause(contract: Contract, clause: str, text: str) -> Contract:
    """``contract`` with ``clause`` (``lend.max_tokens``, ``use.prompts_may_leave``...) set.

    Raises:
        ContractError: an unknown clause or an invalid value (named).
    """
    from aria.consent import parse_contract

    section, _, field = clause.partition(".")
    data = contract.model_dump(mode="json")
    terms = getattr(contract, section, None)
    if section not in ("lend", "use") or terms is None or field not in type(terms).model_fields:
        known = [f"lend.{f}" for f in type(contract.lend).model_fields]
        known += [f"use.{f}" for f in type(contract.use).model_fields]
        raise ContractError(f"no clause {clause!r}; the clauses are: {', '.join(known)}")
    annotation = type(terms).model_fields[field].annotation
    data[section][field] = parse_value(text, annotation)
    return parse_contract(data)


def sign_and_apply(cli: CliContext, contract: Contract) -> tuple[InForce, dict[str, Any] | None]:
    """Sign, save, record and apply ``contract`` (:mod:`aria.p2p.consent_change`); returns
    it and the running node's reply (None: no node runs).

    Exits with one line when the running node refuses it (it stays saved and signed).
    """
    from aria.p2p.consent_change import sign_and_apply as sign

    applied = sign(cli.paths, cli.settings, contract)
    running = applied.running
    if running is not None and not running.get("applied"):
        abort(f"saved and signed, but the running node did not take it: {running.get('error')}")
    return applied.in_force, running


def _apply(cli: CliContext, contract: Contract, as_json: bool) -> None:
    saved, running = sign_and_apply(cli, contract)
    if as_json:
        print_json(_payload(cli, saved, running))
        return
    cli.console.print(
        f"consent contract version {saved.contract.version} signed ({saved.sha256[:16]}…)",
        highlight=False,
    )
    report_running(cli, running)


def report_running(cli: CliContext, running: dict[str, Any] | None) -> None:
    if running is None:
        cli.console.print("no node is running: the change applies when it starts")
        return
    seq = running.get("advert_seq")
    note = f"advert {seq} published" if seq is not None else "its advert is being republished"
    cli.console.print(f"the running node applied it ({note})", highlight=False)


@app.command("show")
def show(ctx: typer.Context, as_json: AsJson = False) -> None:
    """The contract in force, as TOML, with its version, hash and signature status."""
    from aria.consent import render_contract

    cli = cli_context(ctx)
    loaded = in_force(cli)
    if as_json:
        print_json(_payload(cli, loaded))
        return
    cli.console.print(render_contract(loaded.contract), highlight=False, markup=False)
    state = "signed" if loaded.signed else "NOT in force"
    cli.console.print(
        f"version {loaded.contract.version}, sha256 {loaded.sha256}, {state}",
        highlight=False,
        soft_wrap=True,
    )
    if loaded.problem:
        cli.err.print(f"[yellow]warning:[/] {loaded.problem}", highlight=False, soft_wrap=True)


@app.command("set")
def set_clause(
    ctx: typer.Context,
    clause: Annotated[
        str, typer.Argument(help="lend.tasks, lend.max_tokens, use.prompts_may_leave, ...")
    ],
    value: Annotated[str, typer.Argument(help="The value; lists comma-separated; none: no limit.")],
    as_json: AsJson = False,
) -> None:
    """Change one clause; the contract is re-signed and the running node applies it."""
    cli = cli_context(ctx)
    loaded = in_force(cli)
    _apply(cli, with_clause(loaded.contract, clause, value), as_json)


@app.command("edit")
def edit(
    ctx: typer.Context,
    file: Annotated[
        Path | None,
        typer.Option("--file", help="Take the new terms from this TOML file instead of an editor."),
    ] = None,
    as_json: AsJson = False,
) -> None:
    """Edit the contract in $VISUAL/$EDITOR (or take it from --file), then sign it."""
    from aria.consent import parse_contract_text, render_contract

    cli = cli_context(ctx)
    loaded = in_force(cli)
    if file is not None:
        try:
            text = file.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise ContractError(f"cannot read {file}: {exc}") from None
    else:
        text = _edit_in_editor(render_contract(loaded.contract))
    contract, _ = parse_contract_text(text)  # any [signature] in it is ignored
    if (
        contract.model_copy(update={"version": loaded.contract.version}) == loaded.contract
        and loaded.signed
    ):
        if as_json:
            print_json(_payload(cli, loaded))
        else:
            cli.console.print("no change")
        return
    _apply(cli, contract, as_json)


def _edit_in_editor(text: str) -> str:
    editor = os.environ.get("VISUAL") or os.environ.get("EDITOR") or "vi"
    with tempfile.TemporaryDirectory(prefix="aria-consent-") as folder:
        path = Path(folder) / "consent.toml"
        path.write_text(text, encoding="utf-8")
        try:
            done = subprocess.run([*shlex.split(editor), str(path)], check=False)
        except OSError as exc:
            raise ContractError(f"cannot run the editor {editor!r}: {exc}; use --file") from None
        if done.returncode != 0:
            raise ContractError(
                f"the editor {editor!r} exited with status {done.returncode}; nothing changed"
            )
        return path.read_text(encoding="utf-8")
