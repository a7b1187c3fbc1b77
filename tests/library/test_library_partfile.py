"""A part fetched in chunks: written at offsets, logged, resumed; a hub prefix adopted."""

from __future__ import annotations

import json
from pathlib import Path

from aria.library.partfile import PartFile
from aria.p2p.keys import NodeKey
from aria.store.transfer import discard_part
from tests.library.support import CHUNK, blob, manifest_of, sha

DATA = blob(4 * CHUNK + 10)


def chunk(index: int) -> bytes:
    return DATA[index * CHUNK : (index + 1) * CHUNK]


def test_chunks_written_in_any_order_make_the_file(tmp_path: Path) -> None:
    manifest, _ = manifest_of(DATA, NodeKey.generate())
    part = PartFile.open(tmp_path / "m.gguf.part", manifest)
    for index in (4, 1, 0, 3, 2):
        part.write(index, chunk(index))
    assert part.verified.complete and part.whole_sha256() == sha(DATA)
    assert part.read(4) == chunk(4)
    part.close()


def test_resume_keeps_logged_chunks_and_ignores_a_torn_record(tmp_path: Path) -> None:
    manifest, _ = manifest_of(DATA, NodeKey.generate())
    path = tmp_path / "m.gguf.part"
    part = PartFile.open(path, manifest)
    part.write(3, chunk(3))
    part.write(0, chunk(0))
    part.close()
    with (tmp_path / "m.gguf.part.chunks").open("ab") as log:
        log.write(b"\x00\x00")  # killed mid-record
    again = PartFile.open(path, manifest)
    assert sorted(again.verified) == [0, 3]
    again.close()
    # Another publisher's manifest of the same file: same chunk list, still resumed.
    other, _ = manifest_of(DATA, NodeKey.generate(), now=1.0)
    assert sorted(PartFile.open(path, other).verified) == [0, 3]


def test_a_part_of_another_file_or_chunk_list_is_discarded(tmp_path: Path) -> None:
    manifest, _ = manifest_of(DATA, NodeKey.generate())
    path = tmp_path / "m.gguf.part"
    part = PartFile.open(path, manifest)
    part.write(0, chunk(0))
    part.close()
    newer, _ = manifest_of(blob(4 * CHUNK + 10, seed=9), NodeKey.generate())
    assert len(PartFile.open(path, newer).verified) == 0


def test_a_hub_prefix_of_the_same_file_is_adopted_chunk_by_chunk(tmp_path: Path) -> None:
    manifest, _ = manifest_of(DATA, NodeKey.generate())
    path = tmp_path / "m.gguf.part"
    prefix = bytearray(DATA[: 2 * CHUNK + 500])
    prefix[CHUNK + 7] ^= 0xFF  # a damaged byte in chunk 1
    path.write_bytes(bytes(prefix))
    (tmp_path / "m.gguf.part.json").write_text(json.dumps({"sha256": sha(DATA), "size": len(DATA)}))
    part = PartFile.open(path, manifest)
    assert sorted(part.verified) == [0]  # chunk 1 damaged, chunk 2 incomplete
    assert json.loads((tmp_path / "m.gguf.part.json").read_text())["chunks_root"]


def test_recheck_finds_chunks_lost_after_they_were_logged(tmp_path: Path) -> None:
    manifest, _ = manifest_of(DATA, NodeKey.generate())
    path = tmp_path / "m.gguf.part"
    part = PartFile.open(path, manifest)
    for index in range(5):
        part.write(index, chunk(index))
    part.close()
    with path.open("r+b") as handle:
        handle.seek(2 * CHUNK)
        handle.write(b"\x00" * 10)
    again = PartFile.open(path, manifest)
    assert again.whole_sha256() != sha(DATA)
    assert again.recheck() == [2] and sorted(again.verified) == [0, 1, 3, 4]
    again.close()
    assert sorted(PartFile.open(path, manifest).verified) == [0, 1, 3, 4]


def test_discarding_removes_the_part_its_note_and_its_log(tmp_path: Path) -> None:
    manifest, _ = manifest_of(DATA, NodeKey.generate())
    path = tmp_path / "m.gguf.part"
    part = PartFile.open(path, manifest)
    part.write(1, chunk(1))
    part.discard()
    assert list(tmp_path.iterdir()) == []
    PartFile.open(path, manifest).close()
    discard_part(path)  # the store's own clean-up knows the log too
    assert list(tmp_path.iterdir()) == []
