"""What the node reports about its library through the control channel (pure data).

The contract between the node and its local clients (``aria library``, ``aria model
download``, ``aria network``); JSON on the wire, typed on both ends (docs/cli.md).
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict

__all__ = [
    "FetchReport",
    "LibraryEntry",
    "LibraryProvider",
    "LibraryStatus",
    "SourceReport",
]


class _View(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")


class LibraryEntry(_View):
    """One installed model as the library sees it."""

    model_id: str
    sha256: str
    size_bytes: int
    licence: str
    published: bool
    shareable: bool
    refusal: str | None = None  # why it may not be shared (licence, denylist, pin)
    chunks: int | None = None  # None: no manifest built yet


class SourceReport(_View):
    peer_id: str
    bytes: int
    chunks: int
    rate_bps: float | None
    state: Literal["active", "banned", "gone"]


class FetchReport(_View):
    """A fetch from peers: one ``start``, ``progress`` items, then ``done``."""

    event: Literal["start", "progress", "done"]
    model_id: str
    sha256: str
    size_bytes: int
    chunks: int
    chunks_done: int
    chunks_resumed: int = 0
    bytes_done: int = 0
    elapsed_s: float = 0.0
    sources: list[SourceReport] = []
    path: str | None = None  # the installed file, with ``done``


class LibraryStatus(_View):
    sharing: bool
    published: int
    uploads_active: int
    max_uploads: int
    upload_mbps: float
    served_transfers: int
    served_bytes: int
    fetching: list[FetchReport] = []


class LibraryProvider(_View):
    """A peer found for a file, as it answered when asked for the file's manifest."""

    peer_id: str
    state: Literal["complete", "partial", "refused", "unreachable"]
    chunks_held: int | None = None
    reason: str | None = None
