"""Stream a remote file into ``<name>.part`` with HTTP Range resume, hashing as it goes.

``huggingface_hub`` deletes partial files when a call fails and never checks sha256, so this
module owns the body transfer:

* the ``.part`` file survives failures and killed processes; the next call re-hashes it and
  asks only for the rest (``Range: bytes=N-``);
* a ``.part.json`` note records which file (sha256, size) the partial bytes belong to, so a
  partial of an older revision is discarded instead of being completed into garbage;
* within one call, dropped connections, timeouts and 5xx answers are retried with resume;
  the attempt budget refills whenever an attempt made progress.

The caller verifies the returned sha256 and decides whether the file becomes visible.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import httpx

from aria.errors import DownloadError, IntegrityError
from aria.store.files import hash_into, storage_errors
from aria.store.hub import http_status_error

__all__ = ["ProgressCallback", "RetryPolicy", "discard_part", "fetch"]

ProgressCallback = Callable[[int, int], None]
"""Called with (bytes present, total bytes) as a transfer advances; first call after resume."""

_RETRYABLE_STATUS = frozenset({408, 429, 500, 502, 503, 504})


@dataclass(frozen=True)
class RetryPolicy:
    """How hard one call tries before giving up (the ``.part`` file is kept for the next)."""

    attempts: int = 5  # consecutive attempts without progress
    backoff_s: float = 0.5
    max_backoff_s: float = 8.0
    connect_timeout_s: float = 15.0
    read_timeout_s: float = 60.0


class _RetryableError(Exception):
    """One attempt failed in a way worth retrying."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class _Part:
    """The open ``.part`` file and the running sha256 of everything in it."""

    def __init__(self, sink: BinaryIO) -> None:
        self.sink = sink
        self.hasher = hashlib.sha256()
        sink.seek(0)
        self.offset = hash_into(self.hasher, sink)

    def write(self, chunk: bytes) -> None:
        self.sink.write(chunk)
        self.hasher.update(chunk)
        self.offset += len(chunk)

    def restart(self) -> None:
        self.sink.seek(0)
        self.sink.truncate()
        self.hasher = hashlib.sha256()
        self.offset = 0


def fetch(
    url: str,
    part_path: Path,
    *,
    size: int,
    expected_sha256: str,
    headers: Mapping[str, str],
    subject: str,
    policy: RetryPolicy,
    progress: ProgressCallback | None = None,
) -> str:
    """Complete ``part_path`` from ``url`` and return the sha256 of its ``size`` bytes.

    Raises:
        DownloadError: the server refused, or every retry failed (the part is kept).
        IntegrityError: the server sent more bytes than advertised (the part is deleted).
    """
    _adopt_part(part_path, expected_sha256=expected_sha256, size=size)
    timeout = httpx.Timeout(policy.read_timeout_s, connect=policy.connect_timeout_s)
    with (
        storage_errors(part_path),
        part_path.open("r+b") as sink,
        httpx.Client(headers=dict(headers), timeout=timeout, follow_redirects=True) as client,
    ):
        part = _Part(sink)
        if progress:
            progress(part.offset, size)
        failures = 0
        while part.offset < size:
            start = part.offset
            try:
                _attempt(client, url, part, size=size, subject=subject, progress=progress)
            except _RetryableError as retry:
                failures = 0 if part.offset > start else failures + 1
                if failures >= policy.attempts:
                    raise DownloadError(
                        f"downloading {subject} failed {failures} times in a row "
                        f"({retry.reason}); {part.offset:,} of {size:,} bytes are kept: run the "
                        "same command again to resume"
                    ) from None
                time.sleep(min(policy.max_backoff_s, policy.backoff_s * 2 ** (failures - 1)))
        sink.flush()
    if part.offset > size:
        discard_part(part_path)
        raise IntegrityError(
            f"the server sent more than the advertised {size:,} bytes of {subject}"
        )
    return part.hasher.hexdigest()


def discard_part(part_path: Path) -> None:
    """Delete a partial download, its note and its log of verified chunks (a file fetched
    from peers in chunks, aria.library)."""
    part_path.unlink(missing_ok=True)
    _note(part_path).unlink(missing_ok=True)
    part_path.with_name(part_path.name + ".chunks").unlink(missing_ok=True)


def _attempt(
    client: httpx.Client,
    url: str,
    part: _Part,
    *,
    size: int,
    subject: str,
    progress: ProgressCallback | None,
) -> None:
    """One GET from the part's end; raises ``_RetryableError`` when trying again may help."""
    offset = part.offset
    # Offsets count bytes of the file itself, so no content-encoding may touch them.
    request_headers = {"Accept-Encoding": "identity"}
    if offset:
        request_headers["Range"] = f"bytes={offset}-"
    try:
        with client.stream("GET", url, headers=request_headers) as response:
            status = response.status_code
            if status in _RETRYABLE_STATUS:
                raise _RetryableError(f"HTTP {status}")
            if status == 416:
                # We only ask for bytes below the advertised size: the server's file is shorter.
                part.restart()
                raise DownloadError(
                    f"{response.url.host} has fewer than the advertised {size:,} bytes of "
                    f"{subject} (HTTP 416); the hub may have changed the file, try again later"
                )
            if status not in (200, 206):
                raise http_status_error(status, subject, str(response.url.host))
            if status == 206:
                _check_content_range(response.headers.get("Content-Range", ""), offset, subject)
            elif offset:
                part.restart()  # the server ignored Range: the body is the whole file again
            for chunk in response.iter_raw():  # as it arrives: a drop loses nothing received
                part.write(chunk)
                if progress:
                    progress(min(part.offset, size), size)
                if part.offset > size:
                    return
    except httpx.TimeoutException:
        raise _RetryableError("the server stopped sending (timeout)") from None
    except httpx.TransportError as exc:
        raise _RetryableError(f"connection lost: {exc}") from None
    finally:
        part.sink.flush()
    if part.offset < size:
        raise _RetryableError(f"the server closed the connection at byte {part.offset:,}")


def _check_content_range(value: str, offset: int, subject: str) -> None:
    # "bytes 1024-4095/4096": the server must resume exactly where the part ends.
    try:
        unit, _, rest = value.partition(" ")
        first = int(rest.split("-", 1)[0])
    except ValueError:
        first, unit = -1, ""
    if unit != "bytes" or first != offset:
        raise DownloadError(
            f"the server answered a resume of {subject} from byte {offset:,} with "
            f"Content-Range {value!r}"
        )


def _adopt_part(part: Path, *, expected_sha256: str, size: int) -> None:
    """Keep ``part`` only if it is a prefix of the same file; note what it belongs to."""
    note = _note(part)
    wanted = {"sha256": expected_sha256, "size": size}
    try:
        recorded = json.loads(note.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        recorded = None
    if recorded != wanted or (part.exists() and part.stat().st_size > size):
        part.unlink(missing_ok=True)
    with storage_errors(note):
        part.parent.mkdir(parents=True, exist_ok=True)
        note.write_text(json.dumps(wanted), encoding="utf-8")
        part.touch()


def _note(part: Path) -> Path:
    return part.with_name(part.name + ".json")
