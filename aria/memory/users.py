"""Whose memory: one store per user, each its own file under ``ARIA_HOME/memory``.

``local`` is the person at this machine (``aria chat``, ``aria memory``, and the API
without a key); each API key has its own store, ``key-<key id>``, so two clients of one
node never see each other's memories.
"""

from __future__ import annotations

import re
from pathlib import Path

from aria.config import AriaPaths
from aria.errors import InvalidRequest

__all__ = ["LOCAL_USER", "known_users", "store_file", "user_for_key"]

LOCAL_USER = "local"
_USER = re.compile(r"^[a-z0-9][a-z0-9-]{0,63}$")
_SUFFIX = ".sqlite3"


def user_for_key(key_id: str) -> str:
    """The memory owner behind an API key id."""
    return f"key-{key_id.lower()}"


def store_file(paths: AriaPaths, user: str) -> Path:
    """The database file of ``user``.

    Raises:
        InvalidRequest: not a valid user name (it could escape the folder).
    """
    if not _USER.match(user):
        raise InvalidRequest(
            f"{user!r} is not a memory user (lower-case letters, digits and '-')", param="user"
        )
    return paths.memory / f"{user}{_SUFFIX}"


def known_users(paths: AriaPaths) -> list[str]:
    """Every user with a memory file, sorted."""
    if not paths.memory.is_dir():
        return []
    return sorted(
        f.name[: -len(_SUFFIX)]
        for f in paths.memory.iterdir()
        if f.name.endswith(_SUFFIX) and _USER.match(f.name[: -len(_SUFFIX)])
    )
