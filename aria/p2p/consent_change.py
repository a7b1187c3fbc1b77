"""Reading and changing this node's consent contract, for the CLI and the API alike.

The contract in force is created from ``[consent]`` on first use and recorded in the
ledger. A change is signed with the node's key as the next version, saved, recorded,
and sent to the node running on this home (``set_consent {contract: sha256}``, which
:mod:`aria.p2p.consent_live` applies at once). ``aria node consent``, ``aria node share``
and ``PUT /api/consent`` all go through here; blocking (files, SQLite, a socket): call it
from a thread in async code.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from aria.config import AriaPaths, AriaSettings
from aria.consent import Contract, InForce, ensure_contract, save_contract
from aria.errors import NodeNotRunning, PeerError
from aria.ledger import Ledger, record_version
from aria.p2p.control import NodeClient
from aria.p2p.identity import load_or_create_identity
from aria.signing import NodeKey

__all__ = [
    "Applied",
    "contract_in_force",
    "current_contract",
    "open_ledger",
    "send_to_running_node",
    "sign_and_apply",
]


@dataclass(frozen=True)
class Applied:
    """A signed change and the running node's answer: None when no node runs on this
    home, else the node's reply with ``applied`` true, or ``{"applied": False, "error"}``."""

    in_force: InForce
    running: dict[str, Any] | None


def open_ledger(paths: AriaPaths, key: NodeKey) -> Ledger:
    """Raises: LedgerError."""
    return Ledger.open(paths.ledger, key)


def contract_in_force(
    paths: AriaPaths, settings: AriaSettings, key: NodeKey, ledger: Ledger
) -> InForce:
    """The signed contract; the first one is made from ``[consent]`` and recorded."""
    return ensure_contract(paths, settings.consent, key, on_new=lambda c: record_version(ledger, c))


def current_contract(paths: AriaPaths, settings: AriaSettings) -> InForce:
    """The contract in force, with the node's key and ledger opened for the occasion.

    Raises: IdentityError, LedgerError, ContractError.
    """
    key = load_or_create_identity(paths)
    with open_ledger(paths, key) as ledger:
        return contract_in_force(paths, settings, key, ledger)


def sign_and_apply(
    paths: AriaPaths, settings: AriaSettings, contract: Contract, *, timeout_s: float = 30.0
) -> Applied:
    """Sign and save ``contract`` as the next version, record it in the ledger (when
    ``ledger.enabled``) and send it to the running node.

    Raises: IdentityError, LedgerError, ContractError (nothing was sent then).
    """
    key = load_or_create_identity(paths)
    saved = save_contract(paths, contract, key)
    if settings.ledger.enabled:
        with open_ledger(paths, key) as ledger:
            record_version(ledger, saved.contract)
    return Applied(saved, send_to_running_node(paths, saved.sha256, timeout_s=timeout_s))


def send_to_running_node(
    paths: AriaPaths, sha256: str, *, timeout_s: float = 30.0
) -> dict[str, Any] | None:
    """Ask the node running on ``paths`` to apply the contract ``sha256`` (see
    :class:`Applied` for the answer)."""
    client = NodeClient.located(paths, timeout_s=timeout_s)
    if client is None:
        return None
    try:
        applied = client.request("set_consent", contract=sha256)
    except NodeNotRunning:
        return None  # a control file left by a node that stopped
    except PeerError as exc:
        return {"applied": False, "error": exc.message}
    return applied if isinstance(applied, dict) else {"applied": True}
