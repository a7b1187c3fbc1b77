"""The pure backend planner: admission, LRU eviction, refusal, idle unload, restart."""

from __future__ import annotations

import pytest

from aria.backends.plan import Desired, Limits, Observed, Refuse, Start, Stop, plan_backends
from aria.backends.states import BackendState, Busy, Failed, Loading, Ready
from aria.catalog import ModelId

GB = 1024**3
LIMITS = Limits(budget_bytes=4 * GB, max_loaded=3, idle_timeout_s=60.0)


def seen(
    model: str, state: BackendState, gb: float = 1.0, used: float = 0.0, queued: int = 0
) -> Observed:
    return Observed(ModelId(model), state, int(gb * GB), used, queued)


def want(model: str, gb: float = 1.0) -> Desired:
    return Desired(ModelId(model), int(gb * GB))


def test_starts_a_model_that_fits() -> None:
    assert plan_backends(want("a"), [seen("b", Ready())], LIMITS, now=0) == Start(ModelId("a"))


@pytest.mark.parametrize("state", [Ready(), Busy(), Loading()])
def test_uses_a_live_backend(state: BackendState) -> None:
    assert plan_backends(want("a"), [seen("a", state)], LIMITS, now=0) is None


def test_restarts_a_failed_backend_in_place() -> None:
    observed = [seen("a", Failed("killed")), seen("b", Ready(), gb=3)]
    assert plan_backends(want("a"), observed, LIMITS, now=0) == Start(ModelId("a"))


def test_evicts_the_least_recently_used_idle_backend() -> None:
    observed = [
        seen("old", Ready(), gb=2, used=10.0),
        seen("new", Ready(), gb=1.5, used=20.0),
    ]
    assert plan_backends(want("a", 1), observed, LIMITS, now=30) == Stop(ModelId("old"), "evict")


def test_never_evicts_busy_or_queued_backends() -> None:
    observed = [seen("busy", Busy(), gb=2), seen("queued", Ready(), gb=1.5, queued=2)]
    action = plan_backends(want("a", 1), observed, LIMITS, now=0)
    assert isinstance(action, Refuse)
    assert "busy" in action.reason


def test_max_loaded_counts_live_backends_only() -> None:
    observed = [seen(m, Ready(), gb=0.1, used=i) for i, m in enumerate("xyz")]
    assert plan_backends(want("a", 0.1), observed, LIMITS, now=9) == Stop(ModelId("x"), "evict")
    observed[0] = seen("x", Failed("crashed"), gb=0.1)
    assert plan_backends(want("a", 0.1), observed, LIMITS, now=9) == Start(ModelId("a"))


def test_refuses_a_model_bigger_than_the_whole_budget() -> None:
    action = plan_backends(want("huge", 5), [], LIMITS, now=0)
    assert isinstance(action, Refuse)
    assert "5.0 GB" in action.reason and "4.0 GB" in action.reason


def test_housekeeping_unloads_idle_and_clears_failed() -> None:
    assert plan_backends(None, [seen("a", Ready(), used=0)], LIMITS, now=59) is None
    assert plan_backends(None, [seen("a", Ready(), used=0)], LIMITS, now=60) == Stop(
        ModelId("a"), "idle"
    )
    assert plan_backends(None, [seen("a", Failed("x"))], LIMITS, now=0) == Stop(
        ModelId("a"), "failed"
    )
    # Someone is waiting: keep it (the waiter restarts a failed one).
    assert plan_backends(None, [seen("a", Failed("x"), queued=1)], LIMITS, now=0) is None
    assert plan_backends(None, [seen("a", Ready(), queued=1)], LIMITS, now=999) is None
