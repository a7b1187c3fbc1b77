"""consent.toml: signed on save, versioned, refused when edited by hand, re-read live."""

from __future__ import annotations

import os

import pytest

from aria.config import AriaPaths, ConsentSettings
from aria.consent import (
    CLOSED,
    Contract,
    ContractBook,
    LendTerms,
    contract_path,
    ensure_contract,
    from_settings,
    load_contract,
    parse_contract_text,
    render_contract,
    save_contract,
)
from aria.errors import ContractError
from aria.signing import NodeKey


def test_first_contract_comes_from_the_old_switches(aria_paths: AriaPaths) -> None:
    key = NodeKey.generate()
    consent = ConsentSettings(
        share_inference=True, share_rpc=True, rpc_peers=["12D3KooWx"], max_remote_tokens=77
    )
    loaded = ensure_contract(aria_paths, consent, key)
    assert loaded.signed and loaded.contract.version == 1
    lend = loaded.contract.lend
    assert lend.tasks == ("inference", "split") and lend.split_peers == ("12D3KooWx",)
    assert lend.peers == ("*",)  # inference: any verified peer, as before
    assert lend.max_tokens == 77 and not loaded.contract.use.prompts_may_leave
    assert from_settings(ConsentSettings()).lend.tasks == ()  # nothing lent by default
    assert from_settings(ConsentSettings(share_library=True)).lend.tasks == ("library",)
    # a second call reads the file, it does not re-create it
    assert ensure_contract(aria_paths, ConsentSettings(), key) == loaded


def test_saving_signs_and_bumps_the_version(aria_paths: AriaPaths) -> None:
    key = NodeKey.generate()
    first = save_contract(aria_paths, Contract(), key)
    second = save_contract(aria_paths, Contract(lend=LendTerms(tasks=("inference",))), key)
    assert (first.contract.version, second.contract.version) == (1, 2)
    assert load_contract(aria_paths, key.peer_id) == second
    text = contract_path(aria_paths).read_text()
    assert "# Task kinds peers may run here" in text and "[signature]" in text
    assert oct(contract_path(aria_paths).stat().st_mode & 0o777) == "0o600"


@pytest.mark.parametrize(
    "edit",
    [
        lambda t: t.replace("max_tokens = 1024", "max_tokens = 999999"),
        lambda t: t.replace('tasks = ["inference"]', 'tasks = ["inference", "split"]'),
        lambda t: t.replace("version = 1", "version = 7"),
        lambda t: t[: t.index("[signature]")],
    ],
)
def test_a_hand_edit_is_refused_and_nothing_is_lent(aria_paths: AriaPaths, edit: object) -> None:
    key = NodeKey.generate()
    save_contract(aria_paths, Contract(lend=LendTerms(tasks=("inference",))), key)
    path = contract_path(aria_paths)
    path.write_text(edit(path.read_text()))  # type: ignore[operator]
    loaded = load_contract(aria_paths, key.peer_id)
    assert loaded is not None and not loaded.signed
    assert loaded.contract == CLOSED and loaded.problem is not None
    assert "aria node consent edit" in loaded.problem
    # signing it again (what `edit` does) restores it, at a fresh version
    contract, _ = parse_contract_text(path.read_text())
    again = save_contract(aria_paths, contract, key)
    assert again.signed and again.contract.version >= 2


def test_another_nodes_signature_is_refused(aria_paths: AriaPaths) -> None:
    save_contract(aria_paths, Contract(), NodeKey.generate())
    loaded = load_contract(aria_paths, NodeKey.generate().peer_id)
    assert (
        loaded is not None
        and loaded.contract == CLOSED
        and "not by this node" in str(loaded.problem)
    )


def test_invalid_clauses_are_named() -> None:
    with pytest.raises(ContractError, match="lend.hours"):
        parse_contract_text('[lend]\nhours = ["25:00-07:00"]\n')
    with pytest.raises(ContractError, match="lend.surprise"):
        parse_contract_text("[lend]\nsurprise = 1\n")
    with pytest.raises(ContractError, match="not valid TOML"):
        parse_contract_text("[lend\n")
    assert parse_contract_text(render_contract(Contract()))[0] == Contract()


def test_the_book_sees_changes_at_once(aria_paths: AriaPaths) -> None:
    key = NodeKey.generate()
    book = ContractBook(aria_paths, key.peer_id)
    assert book.current().contract == CLOSED and not book.current().signed
    save_contract(aria_paths, Contract(lend=LendTerms(tasks=("inference",))), key)
    assert book.current().contract.lend.tasks == ("inference",)
    save_contract(aria_paths, Contract(lend=LendTerms(tasks=("split",))), key)
    os.utime(contract_path(aria_paths), ns=(1, 1))  # even with a clock that did not move
    assert book.current().contract.lend.tasks == ("split",)


def test_a_clause_added_by_a_later_aria_keeps_old_signatures_valid(aria_paths: AriaPaths) -> None:
    """Written without a clause (as an older ARIA would), signed, it still verifies."""
    key = NodeKey.generate()
    save_contract(aria_paths, Contract(lend=LendTerms(tasks=("inference",), max_tokens=9)), key)
    path = contract_path(aria_paths)
    lines = [line for line in path.read_text().splitlines() if not line.startswith("split_peers")]
    path.write_text("\n".join(lines) + "\n")
    loaded = load_contract(aria_paths, key.peer_id)
    assert loaded is not None and loaded.signed, loaded
    assert loaded.contract.lend.split_peers == () and loaded.contract.lend.max_tokens == 9
