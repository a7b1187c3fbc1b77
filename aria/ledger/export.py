"""The portable export format: JSON Lines anyone can verify without ARIA's database.

::

    {"format": "aria-ledger-export", "version": 1, "signer": "12D3KooW...",
     "public_key": "<hex>", "exported_at_ms": ..., "first_seq": 1, "last_seq": 9, "count": 9}
    {"seq": 1, "hash": "<hex>", "sig": "<hex>", "entry": "<canonical entry text>"}
    ...
    {"head": {"seq": 9, "hash": "<hex>", "sig": "<hex>"}}        (full exports only)

Each ``entry`` is the exact canonical text that was hashed and signed (see
:mod:`aria.ledger.entries`); the optional last line is the ledger's signed head, which
shows whether newer entries were cut off. Archives written by compaction have no head;
several files given in order verify as one chain (an archive, then the next one, then a
full export). Verifiers should pin the signer (``--signer PEER_ID``): the header alone
says who signed, not who *should* have.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

from aria.errors import LedgerError
from aria.files import write_atomic
from aria.ledger.chain import Head, StoredRow, VerifyReport, verify_chain
from aria.ledger.entries import SignedEntry
from aria.signing import public_key_from_peer_id

__all__ = ["EXPORT_FORMAT", "verify_exports", "write_export"]

EXPORT_FORMAT = "aria-ledger-export"
_VERSION = 1


def write_export(path: Path, rows: Iterable[StoredRow], *, signer: str, head: Head | None) -> int:
    """Write ``rows`` (and the signed ``head``, for a full export) to ``path`` atomically.

    Returns the number of entries written.

    Raises:
        LedgerError: the file cannot be written.
    """
    lines = [
        json.dumps(
            {"seq": r.entry.seq, "hash": r.entry.hash, "sig": r.entry.sig, "entry": r.entry.text},
            separators=(",", ":"),
        )
        for r in rows
    ]
    seqs = [json.loads(line)["seq"] for line in lines[:1] + lines[-1:]]
    header = {
        "format": EXPORT_FORMAT,
        "version": _VERSION,
        "signer": signer,
        "public_key": public_key_from_peer_id(signer).hex(),
        "exported_at_ms": int(time.time() * 1000),
        "first_seq": seqs[0] if seqs else None,
        "last_seq": seqs[-1] if seqs else None,
        "count": len(lines),
    }
    body = [json.dumps(header, separators=(",", ":")), *lines]
    if head is not None:
        body.append(json.dumps({"head": head.__dict__}, separators=(",", ":")))
    try:
        write_atomic(path, "\n".join(body) + "\n", mode=0o600)
    except OSError as exc:
        raise LedgerError(f"cannot write the export {path}: {exc.strerror or exc}") from None
    return len(lines)


def _read(path: Path) -> tuple[dict[str, Any], list[StoredRow], Head | None]:
    try:
        text = path.read_text(encoding="ascii")
    except UnicodeDecodeError:
        raise LedgerError(f"{path} is not an ARIA ledger export (not ASCII text)") from None
    except OSError as exc:
        raise LedgerError(f"cannot read the export {path}: {exc.strerror or exc}") from None
    lines = [line for line in text.splitlines() if line.strip()]
    try:
        header = json.loads(lines[0]) if lines else {}
    except ValueError:
        header = {}
    if not isinstance(header, dict) or header.get("format") != EXPORT_FORMAT:
        raise LedgerError(f"{path} is not an ARIA ledger export")
    if header.get("version") != _VERSION:
        raise LedgerError(f"{path} is export version {header.get('version')}; this ARIA reads 1")
    rows: list[StoredRow] = []
    head: Head | None = None
    for number, line in enumerate(lines[1:], start=2):
        try:
            item = json.loads(line)
            if "head" in item:
                head = Head(
                    int(item["head"]["seq"]), str(item["head"]["hash"]), str(item["head"]["sig"])
                )
                continue
            rows.append(
                StoredRow(
                    SignedEntry(
                        int(item["seq"]), str(item["entry"]), str(item["hash"]), str(item["sig"])
                    )
                )
            )
        except (ValueError, KeyError, TypeError):
            raise LedgerError(f"{path}:{number} is not an export line") from None
    return header, rows, head


def verify_exports(paths: Sequence[Path], *, signer: str | None = None) -> VerifyReport:
    """Verify one export, or several (archives first) as one chain.

    ``signer`` pins whose ledger it must be; without it, the header's signer is used
    (and the report says so through its ``signer``).

    Raises:
        LedgerError: a file is unreadable or not an export, or files name different signers.
    """
    if not paths:
        raise LedgerError("no export file to verify")
    loaded = [_read(path) for path in paths]
    named = {str(header.get("signer")) for header, _, _ in loaded}
    if len(named) != 1:
        raise LedgerError(f"the files were signed by different nodes: {', '.join(sorted(named))}")
    expected = signer or named.pop()

    def rows() -> Iterator[StoredRow]:
        for _, file_rows, _ in loaded:
            yield from file_rows

    return verify_chain(rows(), signer=expected, head=loaded[-1][2])
