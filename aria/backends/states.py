"""The lifecycle of one backend process, one class per state (matched exhaustively).

    Starting -> Loading -> Ready <-> Busy
        \\          \\        \\        \\
         +----------+--------+--------+--> Failed(reason)   (restarted on next use)
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["BackendState", "Busy", "Failed", "Loading", "Ready", "Starting", "state_name"]


@dataclass(frozen=True)
class Starting:
    """The process was spawned; it has not said anything yet."""


@dataclass(frozen=True)
class Loading:
    """The worker is loading the model file."""


@dataclass(frozen=True)
class Ready:
    """Loaded, answered a health ping, idle."""


@dataclass(frozen=True)
class Busy:
    """Serving a request (others wait in its queue)."""


@dataclass(frozen=True)
class Failed:
    """Could not start, or died; the next request starts a fresh process."""

    reason: str


BackendState = Starting | Loading | Ready | Busy | Failed


def state_name(state: BackendState) -> str:
    """Stable lower-case name (metrics labels, /health)."""
    match state:
        case Starting():
            return "starting"
        case Loading():
            return "loading"
        case Ready():
            return "ready"
        case Busy():
            return "busy"
        case Failed():
            return "failed"
