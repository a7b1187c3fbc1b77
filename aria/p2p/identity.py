"""The node's persistent identity: ``ARIA_HOME/node/identity.key``.

Created once (PKCS#8 PEM, mode 0600) and then only ever read. A file that exists
but cannot be read or parsed is an ``IdentityError``: silently minting a new key
would change the node's peer id and orphan everything peers know about it.
"""

from __future__ import annotations

import contextlib
import logging
import os
import stat
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from aria.config import AriaPaths
from aria.errors import IdentityError
from aria.p2p.keys import NodeKey

__all__ = ["identity_path", "load_identity", "load_or_create_identity"]


log = logging.getLogger(__name__)


def identity_path(paths: AriaPaths) -> Path:
    return paths.node / "identity.key"


def load_identity(paths: AriaPaths) -> NodeKey:
    """Read the existing identity.

    Raises:
        IdentityError: the file is missing, unreadable, not a PEM key, or not Ed25519.
    """
    path = identity_path(paths)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise IdentityError(
            f"this node has no identity yet ({path}); run `aria node start` once to create it"
        ) from None
    except OSError as exc:
        raise IdentityError(f"cannot read the node identity {path}: {exc.strerror}") from exc
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError) as exc:
        raise IdentityError(
            f"the node identity {path} is corrupted (not a PEM private key); restore it from "
            "a backup, or delete it to create a NEW peer id"
        ) from exc
    if not isinstance(key, Ed25519PrivateKey):
        raise IdentityError(f"the node identity {path} is not an Ed25519 key")
    _keep_private(path)
    return NodeKey(key)


def _keep_private(path: Path) -> None:
    """A key file others may read was loosened by something: warn, and make it 0600."""
    mode = path.stat().st_mode
    if mode & 0o077:
        log.warning(
            "%s was readable by others (mode %o); restricting it to 0600", path, mode & 0o777
        )
        with contextlib.suppress(OSError):
            path.chmod(0o600)


def load_or_create_identity(paths: AriaPaths) -> NodeKey:
    """Return the node's key, creating it (0600) on first use only.

    Raises:
        IdentityError: an identity file exists but is unreadable or corrupted.
    """
    path = identity_path(paths)
    if path.exists():
        return load_identity(paths)
    paths.ensure()
    key = NodeKey.generate()
    # O_EXCL: two first starts racing must not each write a different key.
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, stat.S_IRUSR | stat.S_IWUSR)
    except FileExistsError:
        return load_identity(paths)
    with os.fdopen(fd, "wb") as handle:
        handle.write(key.to_pem())
        handle.flush()
        os.fsync(handle.fileno())
    return key
