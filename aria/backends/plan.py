"""Which backend to start, stop or evict: a pure function of what is observed.

The dispatcher's supervisor calls :func:`plan_backends` and applies the action,
re-observing and re-planning until it gets ``None``, ``Start`` or ``Refuse``. Time is
a parameter, so eviction and idle time-outs are tested without clocks or processes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from aria.backends.states import BackendState, Failed, Ready
from aria.catalog.entries import ModelId

__all__ = ["Action", "Desired", "Limits", "Observed", "Refuse", "Start", "Stop", "plan_backends"]

_GB = 1024**3


@dataclass(frozen=True)
class Limits:
    budget_bytes: int
    max_loaded: int
    idle_timeout_s: float


@dataclass(frozen=True)
class Observed:
    """One backend as the supervisor sees it; ``queued`` counts waiting and in-flight requests."""

    model_id: ModelId
    state: BackendState
    ram_bytes: int
    last_used: float
    queued: int


@dataclass(frozen=True)
class Desired:
    model_id: ModelId
    ram_bytes: int


@dataclass(frozen=True)
class Start:
    model_id: ModelId


@dataclass(frozen=True)
class Stop:
    model_id: ModelId
    reason: Literal["idle", "evict", "failed"]


@dataclass(frozen=True)
class Refuse:
    reason: str


Action = Start | Stop | Refuse


def plan_backends(
    desired: Desired | None, observed: Sequence[Observed], limits: Limits, now: float
) -> Action | None:
    """The next step towards serving ``desired`` (or, with ``None``, housekeeping).

    ``None`` means nothing to do: the desired backend is alive (ready, busy or still
    loading: queue for it) or, for housekeeping, nothing is idle or dead. ``Start``
    for a ``Failed`` backend means restart it. Eviction takes the least recently
    used idle backend; busy ones (or ones with queued requests) are never evicted.
    """
    if desired is None:
        return _housekeeping(observed, limits, now)
    current = next((o for o in observed if o.model_id == desired.model_id), None)
    if current is not None and not isinstance(current.state, Failed):
        return None
    # Start it (a failed backend restarts in place), if it fits next to the live ones.
    if desired.ram_bytes > limits.budget_bytes:
        return Refuse(
            f"model {desired.model_id} needs {desired.ram_bytes / _GB:.1f} GB of memory but this "
            f"node's budget is {limits.budget_bytes / _GB:.1f} GB"
        )
    live = [o for o in observed if not isinstance(o.state, Failed) and o is not current]
    used = sum(o.ram_bytes for o in live)
    if len(live) < limits.max_loaded and used + desired.ram_bytes <= limits.budget_bytes:
        return Start(desired.model_id)
    idle = sorted(
        (o for o in live if isinstance(o.state, Ready) and o.queued == 0),
        key=lambda o: o.last_used,
    )
    if idle:
        return Stop(idle[0].model_id, "evict")
    return Refuse(
        f"no room to load model {desired.model_id}: every loaded backend is busy "
        f"({len(live)} loaded, {used / _GB:.1f} of {limits.budget_bytes / _GB:.1f} GB in use)"
    )


def _housekeeping(observed: Sequence[Observed], limits: Limits, now: float) -> Action | None:
    for o in observed:
        if o.queued:
            continue
        if isinstance(o.state, Failed):
            return Stop(o.model_id, "failed")
        if isinstance(o.state, Ready) and now - o.last_used >= limits.idle_timeout_s:
            return Stop(o.model_id, "idle")
    return None
