"""Where ``aria model download`` gets a file, in which order (pure).

=========================================  ==================
flags and consent                          order
=========================================  ==================
``--peers-only``                           peers (the hub is never contacted)
``--prefer-hub``                           hub, then peers
``--from-peers``, or ``use_peers`` (*)      peers, then hub
otherwise                                  hub
=========================================  ==================

(*) the consent contract's ``use.prompts_may_leave`` (``aria node share --use-peers on``).
A model that is not in the catalog has no hub source: only peers can have it. The next
source is tried only after an availability failure (no provider, a broken transfer, the
hub unreachable or sending a bad file); a refusal (licence, denylist, disk space) ends it.
"""

from __future__ import annotations

from typing import Literal

from aria.errors import (
    AriaError,
    DownloadError,
    IntegrityError,
    InvalidRequest,
    PeerError,
    RoutingError,
)

__all__ = ["Source", "download_order", "falls_back"]

Source = Literal["peers", "hub"]


def download_order(
    *,
    in_catalog: bool,
    use_peers: bool,
    from_peers: bool = False,
    peers_only: bool = False,
    prefer_hub: bool = False,
) -> tuple[Source, ...]:
    """The sources to try, first to last (empty: nothing may provide it).

    Raises:
        InvalidRequest: ``peers_only`` with ``prefer_hub``.
    """
    if peers_only and prefer_hub:
        raise InvalidRequest("--peers-only and --prefer-hub contradict each other; pick one")
    order: tuple[Source, ...]
    if peers_only:
        order = ("peers",)
    elif prefer_hub:
        order = ("hub", "peers")
    elif from_peers or use_peers:
        order = ("peers", "hub")
    else:
        order = ("hub",)
    return order if in_catalog else tuple(s for s in order if s == "peers")


def falls_back(error: AriaError) -> bool:
    """Whether the next source may still succeed after ``error``."""
    return isinstance(error, PeerError | RoutingError | DownloadError | IntegrityError)
