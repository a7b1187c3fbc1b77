"""The contract on disk: ``ARIA_HOME/node/consent.toml``, signed by the node's key.

The file is the commented TOML of :func:`aria.consent.contract.render_contract` with a
``[signature]`` table: the signer's peer id, the contract's SHA-256 and the Ed25519
signature of ``b"aria-consent/1\\x00" + sha256``. Only a contract whose signature is
this node's is in force. A file edited by hand (or damaged) is refused: the node then
runs under :data:`CLOSED` — nothing lent, no prompt sent — and says why, until the
operator signs the change with ``aria node consent edit``. A node without a file yet
starts from the old ``[consent]`` switches of ``config.toml`` (:func:`from_settings`),
signed on first use.

:class:`ContractBook` is how a long-running process sees changes made by the CLI at
once: it re-reads the file whenever its modification time or size changes.
"""

from __future__ import annotations

import contextlib
import tomllib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from aria.config import AriaPaths, ConsentSettings
from aria.consent.contract import (
    Contract,
    LendTerms,
    TaskKind,
    UseTerms,
    parse_contract_text,
    render_contract,
)
from aria.errors import ContractError
from aria.files import write_atomic
from aria.signing import NodeKey, public_key_from_peer_id, verify_signature

__all__ = [
    "CLOSED",
    "ContractBook",
    "InForce",
    "contract_path",
    "ensure_contract",
    "from_settings",
    "load_contract",
    "save_contract",
]

_DOMAIN = b"aria-consent/1\x00"

CLOSED = Contract(lend=LendTerms(tasks=()), use=UseTerms(prompts_may_leave=False))


@dataclass(frozen=True)
class InForce:
    """The contract a node acts on, and why that one (``problem``: the file was refused)."""

    contract: Contract
    signed: bool
    problem: str | None = None

    @property
    def sha256(self) -> str:
        return self.contract.sha256


def contract_path(paths: AriaPaths) -> Path:
    return paths.node / "consent.toml"


def from_settings(consent: ConsentSettings) -> Contract:
    """The first contract of a node that used the ``[consent]`` switches of config.toml:
    each switch maps onto its clause (``rpc_peers``, the borrowers of split work, onto
    ``lend.split_peers``)."""
    tasks: list[TaskKind] = []
    if consent.share_inference:
        tasks.append("inference")
    if consent.share_rpc:
        tasks.append("split")
    if consent.share_library:
        tasks.append("library")
    return Contract(
        lend=LendTerms(
            tasks=tuple(tasks),
            split_peers=tuple(consent.rpc_peers),
            min_reputation=consent.rpc_min_reputation,
            ram_gb=consent.rpc_memory_gb,
            max_jobs=consent.max_remote_jobs,
            max_tokens=consent.max_remote_tokens,
        ),
        use=UseTerms(prompts_may_leave=consent.use_peers),
    )


def _sign(contract: Contract, key: NodeKey) -> dict[str, str]:
    digest = contract.sha256
    value = key.sign(_DOMAIN + bytes.fromhex(digest)).hex()
    return {"signer": key.peer_id, "sha256": digest, "value": value}


def _signature_problem(
    contract: Contract, signature: dict[str, object] | None, signer: str
) -> str | None:
    if signature is None:
        return "it is not signed"
    if signature.get("signer") != signer:
        return f"it is signed by {signature.get('signer')!r}, not by this node"
    if signature.get("sha256") != contract.sha256:
        return "it was changed after it was signed"
    try:
        ok = verify_signature(
            public_key_from_peer_id(signer),
            bytes.fromhex(str(signature.get("value"))),
            _DOMAIN + bytes.fromhex(contract.sha256),
        )
    except ValueError:
        ok = False
    return None if ok else "its signature does not verify"


def load_contract(paths: AriaPaths, signer: str) -> InForce | None:
    """The signed contract in force, :data:`CLOSED` with the reason if the file is refused,
    or None when there is no file yet."""
    path = contract_path(paths)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as exc:
        return InForce(CLOSED, False, f"{path} cannot be read ({exc}); nothing is lent")
    try:
        contract, signature = parse_contract_text(text)
    except ContractError as exc:
        return InForce(CLOSED, False, f"{path} is refused: {exc.message}; nothing is lent")
    problem = _signature_problem(contract, signature, signer)
    if problem is not None:
        return InForce(
            CLOSED,
            False,
            f"{path} is refused: {problem}; nothing is lent until it is signed with "
            "`aria node consent edit`",
        )
    return InForce(contract, True)


def save_contract(paths: AriaPaths, contract: Contract, key: NodeKey) -> InForce:
    """Sign ``contract`` as the next version and write it (atomically, 0600).

    The version becomes one more than the file's current one, whatever ``contract`` says.

    Raises:
        ContractError: the file cannot be written.
    """
    previous = 0
    with contextlib.suppress(OSError, ValueError):  # a refused file's version still counts
        previous = _file_version(contract_path(paths))
    version = previous + 1
    signed = contract.model_copy(update={"version": version})
    try:
        write_atomic(contract_path(paths), render_contract(signed, _sign(signed, key)))
    except OSError as exc:
        raise ContractError(f"cannot write {contract_path(paths)}: {exc.strerror or exc}") from None
    return InForce(signed, True)


def _file_version(path: Path) -> int:
    """The version a file states, even one that is refused (so versions never repeat)."""
    version = tomllib.loads(path.read_text(encoding="utf-8")).get("version", 0)
    return version if isinstance(version, int) else 0


def ensure_contract(
    paths: AriaPaths,
    consent: ConsentSettings,
    key: NodeKey,
    *,
    on_new: Callable[[Contract], object] | None = None,
) -> InForce:
    """The contract in force, creating the first one from ``consent`` when there is none
    (``on_new`` is told, e.g. to record it in the ledger)."""
    loaded = load_contract(paths, key.peer_id)
    if loaded is not None:
        return loaded
    created = save_contract(paths, from_settings(consent), key)
    if on_new is not None:
        on_new(created.contract)
    return created


class ContractBook:
    """The contract in force for a running process; re-read when the file changes.

    With no file, ``fallback`` is in force (unsigned).
    """

    def __init__(self, paths: AriaPaths, signer: str, fallback: Contract = CLOSED) -> None:
        self._paths = paths
        self._signer = signer
        self._fallback = fallback
        self._stamp: tuple[int, int] | None = None
        self._current = InForce(fallback, False, "no consent contract yet")

    def current(self) -> InForce:
        path = contract_path(self._paths)
        try:
            stat = path.stat()
            stamp: tuple[int, int] | None = (stat.st_mtime_ns, stat.st_size)
        except OSError:
            stamp = None
        if stamp != self._stamp or stamp is None:
            loaded = load_contract(self._paths, self._signer)
            self._current = loaded or InForce(self._fallback, False, "no consent contract yet")
            self._stamp = stamp
        return self._current
