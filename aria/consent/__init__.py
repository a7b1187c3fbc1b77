"""The consent contract: the operator's signed, versioned terms for peers.

* ``contract`` -- the terms, their TOML form and their hash (pure);
* ``evaluate`` -- ``evaluate(contract, ask, now) -> Admit | Refuse(reason)``: the one
  decision every peer request and every outgoing prompt goes through (pure);
* ``book``     -- ``node/consent.toml``, signed by the node's key; live re-reading;
* ``power``    -- mains or battery, for ``lend.only_on_ac_power``;
* ``shares``   -- the clauses under the plain names of ``aria node share`` and the
  dashboard (pure).

Clauses and reason codes: docs/consent.md.
"""

from aria.consent.book import (
    CLOSED,
    ContractBook,
    InForce,
    contract_path,
    ensure_contract,
    from_settings,
    load_contract,
    save_contract,
)
from aria.consent.contract import (
    ANY,
    TASKS,
    Contract,
    LendTerms,
    TaskKind,
    UseTerms,
    parse_contract,
    parse_contract_text,
    render_contract,
)
from aria.consent.evaluate import Admit, Ask, Decision, Reason, Refuse, evaluate
from aria.consent.power import on_mains_power
from aria.consent.shares import SHARE_NAMES, share_descriptions, shares_of, with_shares

__all__ = [
    "ANY",
    "CLOSED",
    "SHARE_NAMES",
    "TASKS",
    "Admit",
    "Ask",
    "Contract",
    "ContractBook",
    "Decision",
    "InForce",
    "LendTerms",
    "Reason",
    "Refuse",
    "TaskKind",
    "UseTerms",
    "contract_path",
    "ensure_contract",
    "evaluate",
    "from_settings",
    "load_contract",
    "on_mains_power",
    "parse_contract",
    "parse_contract_text",
    "render_contract",
    "save_contract",
    "share_descriptions",
    "shares_of",
    "with_shares",
]
