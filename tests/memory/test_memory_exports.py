"""The public surface of aria.memory is deliberate: every exported name exists."""

from __future__ import annotations

import aria.memory


def test_every_name_in_all_is_importable() -> None:
    for name in aria.memory.__all__:
        assert hasattr(aria.memory, name), name


def test_the_names_the_api_and_cli_rely_on_are_exported() -> None:
    relied_on = {
        "MemoryHub", "MemoryService", "MemoryStore", "MemoryKind", "begin_turn", "end_turn",
        "preparer", "watch_reminders", "embedder_for", "export_document", "import_document",
        "LOCAL_USER", "user_for_key", "store_file", "known_users",
    }  # fmt: skip
    assert relied_on <= set(aria.memory.__all__)
