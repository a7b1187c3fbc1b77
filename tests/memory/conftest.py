"""Memory tests run on trio (the API's loop) with a fixed clock."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from aria.memory import MemoryService, MemoryStore
from tests.memory.fakes import FakeEmbedder, FakeModels

NOW = datetime(2026, 12, 4, 15, 30, tzinfo=timezone(timedelta(hours=1))).timestamp()


@pytest.fixture
def anyio_backend() -> str:
    return "trio"


class Clock:
    def __init__(self, now: float = NOW) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def models() -> FakeModels:
    return FakeModels({"Qwen3-4B", "SmolLM2-135M-Instruct"})


@pytest.fixture
def service(tmp_path: Path, clock: Clock, models: FakeModels) -> Iterator[MemoryService]:
    store = MemoryStore(tmp_path / "memory" / "local.sqlite3")
    yield MemoryService(store, FakeEmbedder(), models, clock=clock)
    store.close()
