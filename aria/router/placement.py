"""Where each entry of a fallback chain runs: here, on a peer, or split over peers (pure).

The router's chain is a list of :class:`ChainEntry` — a model and *where* it runs:

* :class:`Local` — a backend on this machine;
* :class:`OnPeer` — the whole request on one peer that offers the model (its API runs it);
* :class:`Split` — an installed model too big for this node's memory budget (or forced
  with ``aria model run --distributed``), its layers spread over peers that lend compute;
  the plan is made when the entry is opened (:mod:`aria.split`), from the lenders then.

Which entries exist, and in which order, is decided once, in :func:`aria.router.route`
(and :func:`aria.router.place_named` for a named model); the executor only walks them.
Peers and splits appear only when the operator lets prompts reach peers
(``use.prompts_may_leave``): otherwise the node fills in no peer offers at all.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, get_args

from aria.catalog.entries import ModelId
from aria.config import PlacementPreference

__all__ = [
    "PREFERENCES",
    "parse_preference",
    "ChainEntry",
    "Local",
    "OnPeer",
    "Preference",
    "Split",
    "Where",
]

# local-first: this machine's models, then peers, then splits (a whole model on one
# machine beats one spread over the network); peers-first: peers before this machine;
# local-only: this machine's models alone (what a peer's forwarded request asks for).
# The operator's default is ``node.placement``; a request may override it.
Preference = PlacementPreference
PREFERENCES: Final[tuple[str, ...]] = get_args(PlacementPreference)


def parse_preference(text: str) -> Preference | None:
    """The preference ``text`` names (any case, spaces around), or None."""
    match text.strip().lower():
        case "local-first":
            return "local-first"
        case "peers-first":
            return "peers-first"
        case "local-only":
            return "local-only"
    return None


@dataclass(frozen=True)
class Local:
    def __str__(self) -> str:
        return "local"


@dataclass(frozen=True)
class OnPeer:
    peer_id: str

    def __str__(self) -> str:
        return f"peer {self.peer_id}"


@dataclass(frozen=True)
class Split:
    forced: bool = False  # asked for (``--distributed``), not because the model is too big

    def __str__(self) -> str:
        return "split over peers"


Where = Local | OnPeer | Split


@dataclass(frozen=True)
class ChainEntry:
    """One candidate of a chain: ``model_id``, run ``where``."""

    model_id: ModelId
    where: Where = Local()

    def __str__(self) -> str:
        return f"{self.model_id} ({self.where})"
