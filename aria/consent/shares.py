"""The contract's clauses under the plain names ``aria node share`` and the dashboard use.

``share_inference`` / ``share_rpc`` / ``share_library`` are ``"inference"`` / ``"split"`` /
``"library"`` in ``lend.tasks``;
the others name one clause each (``_CLAUSES``). A change under these names is applied to
the contract in force and validated by it, so both front ends refuse and accept the same
values. Pure.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from pydantic import ValidationError

from aria.consent.contract import Contract, LendTerms, TaskKind, UseTerms
from aria.errors import ContractError

__all__ = ["SHARE_NAMES", "share_descriptions", "shares_of", "with_shares"]

_TASK_SWITCHES: Final[dict[str, TaskKind]] = {
    "share_inference": "inference",
    "share_rpc": "split",
    "share_library": "library",
}
_CLAUSES: Final[dict[str, tuple[str, str]]] = {
    "max_remote_jobs": ("lend", "max_jobs"),
    "max_remote_tokens": ("lend", "max_tokens"),
    "use_peers": ("use", "prompts_may_leave"),
    "rpc_memory_gb": ("lend", "ram_gb"),
    "rpc_peers": ("lend", "split_peers"),
    "rpc_min_reputation": ("lend", "min_reputation"),
}
SHARE_NAMES: Final = (*_TASK_SWITCHES, *_CLAUSES)


def shares_of(contract: Contract) -> dict[str, Any]:
    """``{share name: value}`` for ``contract`` (lists as lists)."""
    shares: dict[str, Any] = {name: contract.lends(task) for name, task in _TASK_SWITCHES.items()}
    for name, (section, field) in _CLAUSES.items():
        value = getattr(getattr(contract, section), field)
        shares[name] = list(value) if isinstance(value, tuple) else value
    return shares


def share_descriptions() -> dict[str, str]:
    """One sentence per share name: the clause's own description, or the task it lends."""
    descriptions = {
        "share_inference": 'Whether peers may run whole requests here ("inference" in lend.tasks).',
        "share_rpc": 'Whether peers may borrow compute for split inference ("split" in '
        "lend.tasks; the borrowers are rpc_peers).",
        "share_library": 'Whether peers may fetch the model files this node publishes ("library" '
        "in lend.tasks).",
    }
    for name, (section, field) in _CLAUSES.items():
        terms = LendTerms if section == "lend" else UseTerms
        descriptions[name] = f"{terms.model_fields[field].description} ({section}.{field})"
    return descriptions


def with_shares(contract: Contract, changes: Mapping[str, Any]) -> Contract:
    """``contract`` with ``changes`` (share name -> value) applied and validated.

    Raises:
        ContractError: an unknown name or a value the contract refuses (``param`` names it).
    """
    data = contract.model_dump(mode="json")
    tasks = list(contract.lend.tasks)
    for name, value in changes.items():
        if name in _TASK_SWITCHES:
            if not isinstance(value, bool):
                raise ContractError(f"{name}: must be true or false", param=name)
            task = _TASK_SWITCHES[name]
            if value and task not in tasks:
                tasks.append(task)
            elif not value and task in tasks:
                tasks.remove(task)
        elif name in _CLAUSES:
            section, field = _CLAUSES[name]
            data[section][field] = value
        else:
            known = ", ".join(SHARE_NAMES)
            raise ContractError(f"{name}: not a share setting; they are: {known}", param=name)
    data["lend"]["tasks"] = tasks
    try:
        return Contract.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = tuple(str(part) for part in first["loc"][:2])
        param = next((n for n, clause in _CLAUSES.items() if clause == where), ".".join(where))
        raise ContractError(f"{param}: {first['msg']}", param=param) from None
