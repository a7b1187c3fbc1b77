"""The node identity file: created once (0600), reloaded, never silently replaced."""

from __future__ import annotations

import stat
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from aria.config import AriaPaths
from aria.errors import IdentityError
from aria.p2p.identity import identity_path, load_identity, load_or_create_identity


def test_created_private_then_reloaded(aria_paths: AriaPaths) -> None:
    key = load_or_create_identity(aria_paths)
    path = identity_path(aria_paths)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_or_create_identity(aria_paths).peer_id == key.peer_id
    assert load_identity(aria_paths).peer_id == key.peer_id


def test_corrupted_key_is_an_error_not_a_new_identity(aria_paths: AriaPaths) -> None:
    load_or_create_identity(aria_paths)
    path = identity_path(aria_paths)
    path.write_bytes(b"-----BEGIN PRIVATE KEY-----\nnot base64 at all\n-----END PRIVATE KEY-----\n")
    before = path.read_bytes()
    with pytest.raises(IdentityError, match="corrupted"):
        load_or_create_identity(aria_paths)
    assert path.read_bytes() == before  # untouched


def test_unreadable_and_wrong_type_keys(aria_paths: AriaPaths) -> None:
    path = identity_path(aria_paths)
    path.mkdir()  # unreadable as a file, even for root
    with pytest.raises(IdentityError, match="cannot read"):
        load_or_create_identity(aria_paths)
    path.rmdir()
    other = ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    path.write_bytes(other)
    with pytest.raises(IdentityError, match="not an Ed25519 key"):
        load_identity(aria_paths)


def test_missing_identity_is_explained(aria_paths: AriaPaths) -> None:
    with pytest.raises(IdentityError, match="no identity yet"):
        load_identity(aria_paths)


def _aria(*args: str, home: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "aria", *args],
        capture_output=True,
        text=True,
        env={"ARIA_HOME": str(home), "PATH": "/usr/bin:/bin"},
        timeout=60,
        check=False,
    )


def test_cli_node_id(aria_paths: AriaPaths) -> None:
    missing = _aria("node", "id", home=aria_paths.home)
    assert missing.returncode == IdentityError.exit_code
    assert missing.stderr.startswith("error: this node has no identity yet")
    key = load_or_create_identity(aria_paths)
    result = _aria("node", "id", home=aria_paths.home)
    assert result.returncode == 0 and result.stdout.strip() == key.peer_id
    identity_path(aria_paths).write_text("garbage")
    broken = _aria("node", "id", home=aria_paths.home)
    assert broken.returncode == IdentityError.exit_code
    assert "corrupted" in broken.stderr and "Traceback" not in broken.stderr
    assert len(broken.stderr.strip().splitlines()) == 1


def test_node_start_refuses_a_corrupted_identity(aria_paths: AriaPaths) -> None:
    load_or_create_identity(aria_paths)
    identity_path(aria_paths).write_text("-----BEGIN PRIVATE KEY-----\nAAAA\n")
    result = _aria("node", "start", "--port", "0", "--no-mdns", home=aria_paths.home)
    assert result.returncode == IdentityError.exit_code
    assert result.stderr.startswith("error: the node identity") and "corrupted" in result.stderr
    assert not (aria_paths.node / "node.pid").exists()


def test_a_loosened_identity_key_is_made_private_again(aria_paths: AriaPaths) -> None:
    key = load_or_create_identity(aria_paths)
    path = aria_paths.node / "identity.key"
    path.chmod(0o644)
    assert load_identity(aria_paths).peer_id == key.peer_id
    assert path.stat().st_mode & 0o777 == 0o600
