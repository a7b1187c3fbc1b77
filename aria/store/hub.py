"""Where a Hugging Face file lives and what the hub says about it (HEAD on ``/resolve/``).

``huggingface_hub`` builds the URL, the auth headers and parses the metadata, so hub mirrors
(``HF_ENDPOINT``) and tokens (``HF_TOKEN``) behave as users expect. The endpoint is read when
a download starts, never at import, and passed explicitly: the library's own module constant
is frozen at its import time. The body itself is fetched by :mod:`aria.store.transfer`.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass

import httpx2
from huggingface_hub import get_hf_file_metadata, get_token, hf_hub_url
from huggingface_hub.errors import (
    EntryNotFoundError,
    GatedRepoError,
    HfHubHTTPError,
    OfflineModeIsEnabled,
    RepositoryNotFoundError,
    RevisionNotFoundError,
)

from aria import __version__
from aria.catalog.entries import CatalogEntry, HuggingFaceSource
from aria.errors import DownloadError, IntegrityError
from aria.store.manifest import HashSource

__all__ = [
    "DEFAULT_ENDPOINT",
    "HubConfig",
    "RemoteFile",
    "expected_sha256",
    "expected_size",
    "http_status_error",
    "resolve",
]

DEFAULT_ENDPOINT = "https://huggingface.co"

_SHA256 = re.compile(r"[0-9a-f]{64}")
_GIT_SHA1 = re.compile(r"[0-9a-f]{40}")


@dataclass(frozen=True)
class HubConfig:
    """How to reach the hub: endpoint (a mirror works), optional token, network timeout."""

    endpoint: str = DEFAULT_ENDPOINT
    token: str | None = None
    timeout_s: float = 30.0

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> HubConfig:
        """Honour ``HF_ENDPOINT`` and ``HF_TOKEN`` as ``huggingface_hub`` itself does."""
        env = os.environ if environ is None else environ
        endpoint = (env.get("HF_ENDPOINT") or DEFAULT_ENDPOINT).rstrip("/")
        return cls(endpoint=endpoint, token=env.get("HF_TOKEN") or None)

    def headers(self) -> dict[str, str]:
        """Request headers: ARIA's user agent, and the token when one is set or cached."""
        headers = {"user-agent": f"aria/{__version__}"}
        token = self.token or get_token()
        if token:
            headers["authorization"] = f"Bearer {token}"
        return headers


@dataclass(frozen=True)
class RemoteFile:
    """One file as the hub describes it."""

    url: str  # where to GET the body (the hub may redirect to a CDN)
    size: int | None
    sha256: str | None  # the LFS object's sha256, when the ETag is one
    commit: str | None
    git_sha1: str | None = None  # a plain (non-LFS) file's git blob id, when the ETag is one


def resolve(source: HuggingFaceSource, hub: HubConfig) -> RemoteFile:
    """Ask the hub for the file's location, size and advertised sha256.

    Raises:
        DownloadError: the repo, revision or file does not exist, access is denied
            (gated or private: set ``HF_TOKEN``), or the hub cannot be reached.
    """
    subject = f"{source.repo}/{source.file}@{source.revision}"
    url = hf_hub_url(source.repo, source.file, revision=source.revision, endpoint=hub.endpoint)
    try:
        meta = get_hf_file_metadata(
            url, token=hub.token, timeout=hub.timeout_s, endpoint=hub.endpoint
        )
    except OfflineModeIsEnabled:
        raise DownloadError(
            f"HF_HUB_OFFLINE is set, so {subject} cannot be downloaded; unset it to go online"
        ) from None
    except GatedRepoError:
        raise DownloadError(
            f"{source.repo} is gated on {hub.endpoint}: accept its terms there, then set "
            "HF_TOKEN to a token that has access"
        ) from None
    except RepositoryNotFoundError as exc:
        if _status(exc) in (401, 403):
            raise DownloadError(
                f"{source.repo} was not found on {hub.endpoint} or is private; if it is "
                "private, set HF_TOKEN to a token that can read it"
            ) from None
        raise DownloadError(f"repository {source.repo} does not exist on {hub.endpoint}") from None
    except RevisionNotFoundError:
        raise DownloadError(
            f"revision {source.revision!r} of {source.repo} does not exist on {hub.endpoint}"
        ) from None
    except EntryNotFoundError:
        raise DownloadError(
            f"{source.file} is not in {source.repo}@{source.revision} on {hub.endpoint}"
        ) from None
    except HfHubHTTPError as exc:
        raise http_status_error(_status(exc), subject, hub.endpoint) from None
    except httpx2.TimeoutException:
        raise DownloadError(f"{hub.endpoint} did not answer within {hub.timeout_s:g} s") from None
    except httpx2.TransportError as exc:
        raise DownloadError(
            f"cannot reach {hub.endpoint} ({_reason(exc)}); check the network or HF_ENDPOINT"
        ) from None
    etag = (meta.etag or "").lower()
    return RemoteFile(
        url=meta.location,
        size=meta.size,
        sha256=etag if _SHA256.fullmatch(etag) else None,
        commit=meta.commit_hash,
        git_sha1=etag if _GIT_SHA1.fullmatch(etag) else None,
    )


def expected_sha256(
    entry: CatalogEntry, remote: RemoteFile, endpoint: str
) -> tuple[str, HashSource]:
    """The sha256 the download must have, and where that expectation comes from.

    The catalog's pin wins; without one, the hub's LFS ETag is the sha256 of the object.

    Raises:
        IntegrityError: the hub advertises another file than the catalog pins, or no hash
            is known at all (ARIA installs only files it can verify).
    """
    if entry.sha256 is not None:
        if remote.sha256 is not None and remote.sha256 != entry.sha256:
            raise IntegrityError(
                f"{endpoint} serves a different file for {entry.id} (sha256 {remote.sha256}) "
                f"than the catalog pins ({entry.sha256}); nothing was downloaded"
            )
        return entry.sha256, HashSource.CATALOG
    if remote.sha256 is not None:
        return remote.sha256, HashSource.HUB_ETAG
    raise IntegrityError(
        f"neither the catalog nor {endpoint} gives a sha256 for {entry.id}; ARIA installs "
        "only files it can verify"
    )


def expected_size(entry: CatalogEntry, remote: RemoteFile, endpoint: str) -> int:
    """The byte count the download must have (hub and catalog must agree when both say).

    Raises:
        IntegrityError: they disagree, or neither says.
    """
    if entry.size_bytes is not None and remote.size is not None and remote.size != entry.size_bytes:
        raise IntegrityError(
            f"{endpoint} serves {remote.size:,} bytes for {entry.id}, the catalog says "
            f"{entry.size_bytes:,}; nothing was downloaded"
        )
    size = remote.size or entry.size_bytes
    if size is None:
        raise IntegrityError(f"{endpoint} does not say how large {entry.id} is; cannot verify it")
    return size


def http_status_error(status: int | None, subject: str, endpoint: str) -> DownloadError:
    """A readable error for an HTTP status the hub answered with."""
    if status in (401, 403):
        return DownloadError(
            f"{endpoint} refused access to {subject} (HTTP {status}); the repository is gated "
            "or private: set HF_TOKEN to a token that has access"
        )
    if status == 404:
        return DownloadError(f"{subject} was not found on {endpoint} (HTTP 404)")
    if status == 429:
        return DownloadError(f"{endpoint} is rate-limiting downloads (HTTP 429); retry later")
    return DownloadError(f"{endpoint} answered HTTP {status} for {subject}; retry later")


def _status(exc: HfHubHTTPError) -> int | None:
    response = getattr(exc, "response", None)
    return None if response is None else int(response.status_code)


def _reason(exc: Exception) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
