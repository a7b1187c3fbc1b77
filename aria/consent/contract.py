"""The consent contract: what peers may do with this machine, and what it may send them.

The operator edits it as TOML (``aria node consent show|set|edit``); ARIA validates it,
bumps its ``version`` and signs it with the node's key. Its *hash* — SHA-256 of its
canonical JSON (:meth:`Contract.canonical_text`: the clauses that differ from their
defaults) — travels in the node's advert and handshake, and every receipt of work done
for a peer names the hash it ran under.

Pure: parsing, rendering and hashing only; files live in :mod:`aria.consent.book`.
"""

from __future__ import annotations

import hashlib
import json
import re
import tomllib
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from aria.errors import ContractError

__all__ = [
    "ANY",
    "TASKS",
    "Contract",
    "LendTerms",
    "TaskKind",
    "UseTerms",
    "parse_contract",
    "parse_contract_text",
    "render_contract",
]

ANY = "*"
TaskKind = Literal["inference", "split", "library"]
TASKS: tuple[TaskKind, ...] = ("inference", "split", "library")
_WINDOW = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)-([01]\d|2[0-3]):([0-5]\d)$")


class _Terms(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)


class LendTerms(_Terms):
    """What verified peers may do with this machine."""

    tasks: tuple[TaskKind, ...] = Field(
        default=(),
        description='Task kinds peers may run here: "inference" (a whole request on a model '
        'of this node), "split" (layers of a peer\'s model, over ggml-rpc), "library" '
        "(downloading model files from this node). [] lends nothing.",
    )
    models: tuple[str, ...] = Field(
        default=(ANY,),
        description='Model ids peers may use here ("*": every model this node shares).',
    )
    peers: tuple[str, ...] = Field(
        default=(ANY,),
        description='Peer ids that may ask for inference or library files ("*": any '
        "verified peer).",
    )
    split_peers: tuple[str, ...] = Field(
        default=(),
        description='Peer ids that may borrow compute for split work ("*": any verified '
        "peer). Nobody by default: lending raw compute is opted into twice, with "
        '"split" in tasks and the borrowers named here.',
    )
    deny: tuple[str, ...] = Field(
        default=(), description="Peer ids that may never ask (wins over peers)."
    )
    min_reputation: float = Field(
        default=0.0,
        ge=0,
        le=1,
        description="Lowest reputation (0..1) a peer may have (0.5 for a peer never checked).",
    )
    threads: int | None = Field(
        default=None,
        ge=1,
        le=1024,
        description="CPU threads a peer's split work may use (none: this node's default).",
    )
    ram_gb: float = Field(
        default=2.0, gt=0, le=65536, description="Memory offered to peers' split work, in GB."
    )
    upload_mbps: float | None = Field(
        default=None,
        gt=0,
        description="Most upload bandwidth peers' work may use, in megabits/s (none: no cap).",
    )
    max_jobs: int = Field(
        default=1, ge=0, le=64, description="Peer inference jobs this node runs at once."
    )
    max_tokens: int = Field(
        default=1024, ge=1, le=1_000_000, description="Most tokens generated for one peer request."
    )
    hours: tuple[str, ...] = Field(
        default=(),
        description='Local-time windows when lending is allowed, e.g. ["22:00-07:00"] '
        "([]: any time).",
    )
    only_on_ac_power: bool = Field(
        default=False,
        description="Lend only while on mains power (when this machine can tell; a machine "
        "without a battery is on mains).",
    )

    @field_validator("hours")
    @classmethod
    def _windows(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for window in value:
            match = _WINDOW.match(window)
            if match is None or window[:5] == window[6:]:
                raise ValueError(f"{window!r} is not a window like 22:00-07:00")
        return value

    @field_validator("models", "peers", "split_peers", "deny")
    @classmethod
    def _names(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        cleaned = tuple(dict.fromkeys(item.strip() for item in value if item.strip()))
        if any(len(item) > 128 for item in cleaned):
            raise ValueError("ids are at most 128 characters")
        return cleaned


class UseTerms(_Terms):
    """What this machine may send to peers."""

    prompts_may_leave: bool = Field(
        default=False,
        description="Whether prompts (and, for split models, hidden states) may be sent to "
        "peers at all.",
    )
    min_reputation: float = Field(
        default=0.2,
        ge=0,
        le=1,
        description="Peers below this reputation (0..1) are never chosen to serve a request.",
    )


class Contract(_Terms):
    version: int = Field(default=1, ge=1, description="Bumped on every signed change.")
    lend: LendTerms = LendTerms()
    use: UseTerms = UseTerms()

    def canonical_text(self) -> str:
        """The exact text the hash covers: the clauses that differ from their defaults, as
        JSON with sorted keys and no whitespace. Leaving defaults out keeps a signed
        contract valid when a later ARIA adds a clause (at a default that changes nothing)."""
        return json.dumps(
            self.model_dump(mode="json", exclude_defaults=True),
            sort_keys=True,
            separators=(",", ":"),
            ensure_ascii=True,
        )

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.canonical_text().encode("ascii")).hexdigest()

    def lends(self, task: TaskKind) -> bool:
        return task in self.lend.tasks


def parse_contract(data: dict[str, Any]) -> Contract:
    """A contract from TOML data (the ``[signature]`` table already removed).

    Raises:
        ContractError: a clause is unknown or out of range (named).
    """
    try:
        return Contract.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        raise ContractError(f"consent contract: {where}: {first['msg']}") from None


def parse_contract_text(text: str) -> tuple[Contract, dict[str, Any] | None]:
    """Parse TOML text: the contract and its ``[signature]`` table, if any.

    Raises:
        ContractError: not TOML, or not a valid contract.
    """
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ContractError(f"the consent contract is not valid TOML: {exc}") from None
    signature = data.pop("signature", None)
    if signature is not None and not isinstance(signature, dict):
        raise ContractError("the consent contract's signature must be a table")
    return parse_contract(data), signature


_HEADER = """\
# ARIA consent contract: what peers may do with this machine, and what it may send them.
# Change it with `aria node consent set KEY VALUE` or `aria node consent edit`: each
# change is checked, given the next version and signed with this node's key (a change
# made by hand breaks the signature, and the node then lends nothing until it is signed).
"""


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    raise TypeError(f"cannot write {value!r} as TOML")


def _section(name: str, terms: _Terms) -> list[str]:
    lines = ["", f"[{name}]"]
    for field_name, info in type(terms).model_fields.items():
        value = getattr(terms, field_name)
        lines.append(f"# {info.description}")
        if value is None:
            lines.append(f"# {field_name} = ")
        else:
            lines.append(f"{field_name} = {_toml_value(value)}")
    return lines


def render_contract(contract: Contract, signature: dict[str, str] | None = None) -> str:
    """The contract as commented TOML (what ``consent.toml`` holds), signed if given."""
    lines = [_HEADER.rstrip("\n"), f"version = {contract.version}"]
    lines += _section("lend", contract.lend)
    lines += _section("use", contract.use)
    if signature is not None:
        lines += ["", "# Written by ARIA: this node's signature of the terms above.", "[signature]"]
        lines += [f"{k} = {_toml_value(v)}" for k, v in signature.items()]
    return "\n".join(lines) + "\n"
