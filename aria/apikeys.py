"""API keys: random bearer tokens shown once, stored only as SHA-256 hashes.

Below the web stack on purpose: the API checks keys with it, the CLI manages them, and
the node process (no FastAPI there) mints its own key to forward peers' requests.

Keys are 256-bit random values, so a fast hash is enough (nothing to brute-force);
comparison is constant-time. The file lives in ``ARIA_HOME/api/keys.json`` (mode
0600) and is re-read when it changes, so ``aria api key revoke`` takes effect on a
running server at its next request.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

from aria.errors import ConfigError, Conflict, InvalidRequest, NotFound
from aria.files import write_atomic

__all__ = ["ApiKey", "KeyStore"]

_PREFIX = "aria-"


@dataclass(frozen=True)
class ApiKey:
    id: str
    name: str
    hint: str  # the first characters of the secret, to recognise it
    created: str
    sha256: str
    memory: bool = False  # requests with this key use its own memory unless they say no

    def public(self) -> dict[str, str | bool]:
        """What may be shown of a key: everything but its hash."""
        return {
            "id": self.id, "name": self.name, "hint": self.hint, "created": self.created,
            "memory": self.memory,
        }  # fmt: skip


class KeyStore:
    """The node's API keys."""

    def __init__(self, directory: Path) -> None:
        self._file = directory / "keys.json"
        self._cache: tuple[float, list[ApiKey]] | None = None

    def all(self) -> list[ApiKey]:
        try:
            mtime = self._file.stat().st_mtime_ns
        except FileNotFoundError:
            return []
        if self._cache is None or self._cache[0] != mtime:
            self._cache = (mtime, self._read())
        return list(self._cache[1])

    def _read(self) -> list[ApiKey]:
        try:
            data = json.loads(self._file.read_text(encoding="utf-8"))
            return [ApiKey(**item) for item in data["keys"]]
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ConfigError(
                f"{self._file} is unreadable ({exc}); delete it and create new keys"
            ) from None

    def _write(self, keys: list[ApiKey]) -> None:
        write_atomic(self._file, json.dumps({"keys": [asdict(k) for k in keys]}, indent=2))
        self._cache = None

    def create(self, name: str) -> tuple[ApiKey, str]:
        """A new key; the secret is returned once and never stored.

        Raises:
            InvalidRequest: ``name`` is empty. Conflict: ``name`` is already used.
            ConfigError: the keys file is unreadable.
        """
        name = name.strip()
        keys = self.all()
        if not name:
            raise InvalidRequest("an API key needs a name", param="name")
        if any(k.name == name for k in keys):
            raise Conflict(
                f"an API key named {name!r} exists; revoke it first or pick a new name",
                param="name",
            )
        secret = _PREFIX + secrets.token_urlsafe(32)
        key = ApiKey(
            id=secrets.token_hex(4),
            name=name,
            hint=secret[: len(_PREFIX) + 4] + "...",
            created=datetime.now(UTC).isoformat(timespec="seconds"),
            sha256=_digest(secret),
        )
        self._write([*keys, key])
        return key, secret

    def revoke(self, key: str) -> ApiKey:
        """Remove the key with this id or name.

        Raises:
            NotFound: no key matches. ConfigError: the keys file is unreadable.
        """
        keys = self.all()
        found = _named(keys, key)
        self._write([k for k in keys if k is not found])
        return found

    def verify(self, secret: str) -> bool:
        """Is ``secret`` a current key? (constant-time per stored hash)."""
        return self.find(secret) is not None

    def find(self, secret: str) -> ApiKey | None:
        """The current key whose secret is ``secret`` (every stored hash is compared)."""
        digest = _digest(secret)
        found = None
        for key in self.all():
            if hmac.compare_digest(digest, key.sha256):
                found = key
        return found

    def set_memory(self, key: str, enabled: bool) -> ApiKey:
        """Turn memory on or off for the key with this id or name.

        Raises:
            NotFound: no key matches. ConfigError: the keys file is unreadable.
        """
        keys = self.all()
        found = _named(keys, key)
        changed = replace(found, memory=enabled)
        self._write([changed if k is found else k for k in keys])
        return changed


def _named(keys: list[ApiKey], key: str) -> ApiKey:
    """The key whose id or name is ``key``.

    Raises:
        NotFound: none is.
    """
    match = next((k for k in keys if key in (k.id, k.name)), None)
    if match is None:
        raise NotFound(f"no API key has the id or name {key!r}; see `aria api key list`")
    return match


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()
