"""Ledger entries: their canonical bytes, hash and signature (pure).

An entry is one JSON object::

    {"v": 1, "seq": 42, "prev": "<sha256 hex of entry 41>", "kind": "inference",
     "at_ms": 1764892800000, "signer": "12D3KooW...", "body": {...}}

Its *canonical text* is that object serialised with sorted keys, no whitespace and
ASCII escapes (``json.dumps(obj, sort_keys=True, separators=(",", ":"),
ensure_ascii=True)``); only strings, integers, booleans, null, lists and objects are
allowed (no floats: every implementation must produce the same bytes). The entry's
hash is the SHA-256 of the canonical text; its signature is the signer's Ed25519
signature of ``b"aria-ledger/1\\x00" + hash`` (32 raw bytes). ``prev`` chains each
entry to the one before it (``GENESIS`` for the first), so editing, deleting or
reordering any entry breaks every hash after it.

Bodies are typed by ``kind`` (see :mod:`aria.ledger.bodies`).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from aria.signing import NodeKey, public_key_from_peer_id, verify_signature

__all__ = [
    "ENTRY_VERSION",
    "GENESIS",
    "Entry",
    "SignedEntry",
    "canonical",
    "entry_signature_ok",
    "sha256_hex",
    "sign_entry",
]

ENTRY_VERSION = 1
GENESIS = "0" * 64
_DOMAIN = b"aria-ledger/1\x00"


def canonical(value: Any) -> str:
    """The canonical JSON text of ``value``.

    Raises:
        ValueError: ``value`` holds a float (or anything JSON cannot encode exactly).
    """
    _reject_floats(value)
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=True)


def _reject_floats(value: Any) -> None:
    if isinstance(value, float):
        raise ValueError("ledger entries hold no floats (use integer units)")
    if isinstance(value, dict):
        for item in value.values():
            _reject_floats(item)
    elif isinstance(value, list | tuple):
        for item in value:
            _reject_floats(item)


def sha256_hex(data: bytes | str) -> str:
    raw = data.encode("utf-8") if isinstance(data, str) else data
    return hashlib.sha256(raw).hexdigest()


@dataclass(frozen=True)
class Entry:
    """An unsigned entry: where it sits in the chain and what it says."""

    seq: int
    prev: str
    kind: str
    at_ms: int
    signer: str
    body: dict[str, Any]

    def to_json(self) -> dict[str, Any]:
        return {
            "v": ENTRY_VERSION,
            "seq": self.seq,
            "prev": self.prev,
            "kind": self.kind,
            "at_ms": self.at_ms,
            "signer": self.signer,
            "body": self.body,
        }

    def text(self) -> str:
        return canonical(self.to_json())


@dataclass(frozen=True)
class SignedEntry:
    """An entry as stored and exported: its canonical text, hash and signature (hex)."""

    seq: int
    text: str
    hash: str
    sig: str

    def decoded(self) -> dict[str, Any]:
        """The entry object (``ValueError`` if the text is not a JSON object)."""
        value = json.loads(self.text)
        if not isinstance(value, dict):
            raise ValueError("an entry is a JSON object")
        return value


def sign_entry(entry: Entry, key: NodeKey) -> SignedEntry:
    """Serialise, hash and sign ``entry`` with ``key`` (which must be its signer)."""
    if entry.signer != key.peer_id:
        raise ValueError("an entry is signed by the key it names")
    text = entry.text()
    digest = hashlib.sha256(text.encode("ascii")).digest()
    return SignedEntry(entry.seq, text, digest.hex(), key.sign(_DOMAIN + digest).hex())


def entry_signature_ok(signer: str, hash_hex: str, sig_hex: str) -> bool:
    """Whether ``sig_hex`` is ``signer``'s signature of the entry hash ``hash_hex``."""
    try:
        public_key = public_key_from_peer_id(signer)
        digest = bytes.fromhex(hash_hex)
        signature = bytes.fromhex(sig_hex)
    except ValueError:
        return False
    return len(digest) == 32 and verify_signature(public_key, signature, _DOMAIN + digest)
