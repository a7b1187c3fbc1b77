"""The denylist: shipped entries, lookups, refusals and malformed files."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from aria.catalog import Denylist, load_catalog, load_denylist
from aria.errors import CatalogError, DeniedFile

EMPTY_FILE_SHA256 = hashlib.sha256(b"").hexdigest()


def test_shipped_denylist_blocks_the_empty_file() -> None:
    denylist = load_denylist()
    assert EMPTY_FILE_SHA256 in denylist
    entry = denylist.lookup(EMPTY_FILE_SHA256.upper())
    assert entry is not None
    assert "empty file" in entry.reason


def test_check_raises_denied_file_naming_subject_and_reason(tmp_path: Path) -> None:
    empty = tmp_path / "model.gguf"
    empty.write_bytes(b"")
    digest = hashlib.sha256(empty.read_bytes()).hexdigest()
    with pytest.raises(DeniedFile) as caught:
        load_denylist().check(digest, subject=f"file {empty}")
    assert str(empty) in caught.value.message
    assert "empty file: never a valid model" in caught.value.message
    assert caught.value.http_status == 403


def test_check_lets_other_files_through() -> None:
    load_denylist().check(hashlib.sha256(b"GGUF").hexdigest(), subject="file x.gguf")


def test_every_shipped_entry_gives_a_reason() -> None:
    denylist = load_denylist()
    assert len(denylist) >= 1
    assert all(entry.reason.strip() for entry in denylist)


def test_no_catalog_model_is_denied() -> None:
    denylist = load_denylist()
    pinned = [entry.sha256 for entry in load_catalog() if entry.sha256 is not None]
    assert not [sha for sha in pinned if sha in denylist]


def test_a_custom_denylist_file_loads(tmp_path: Path) -> None:
    path = tmp_path / "denylist.toml"
    path.write_text(
        f'[[denied]]\nsha256 = "{"ab" * 32}"\nreason = "known-bad test artefact"\n',
        encoding="utf-8",
    )
    denylist = load_denylist(path)
    assert "AB" * 32 in denylist
    assert EMPTY_FILE_SHA256 not in denylist


def test_an_empty_denylist_file_blocks_nothing(tmp_path: Path) -> None:
    path = tmp_path / "denylist.toml"
    path.write_text("# nothing blocked\n", encoding="utf-8")
    assert len(load_denylist(path)) == 0


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ('[[denied]]\nsha256 = "xyz"\nreason = "r"\n', "denied.0.sha256"),
        (f'[[denied]]\nsha256 = "{"a" * 64}"\n', "denied.0.reason"),
        ("[[denied]\n", "is not valid TOML"),
    ],
)
def test_a_malformed_denylist_is_a_catalog_error(tmp_path: Path, text: str, fragment: str) -> None:
    path = tmp_path / "denylist.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(CatalogError) as caught:
        load_denylist(path)
    assert fragment in caught.value.message


def test_a_hash_listed_twice_is_rejected(tmp_path: Path) -> None:
    row = f'[[denied]]\nsha256 = "{"c" * 64}"\nreason = "r"\n'
    path = tmp_path / "denylist.toml"
    path.write_text(row + row, encoding="utf-8")
    with pytest.raises(CatalogError, match="more than once"):
        load_denylist(path)


def test_denylist_is_a_plain_value() -> None:
    assert len(Denylist(entries=())) == 0
