"""Exactly-once reminders and no lost memories, with real processes killed mid-write."""

from __future__ import annotations

import multiprocessing
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from aria.memory import MemoryKind, MemoryStore, TriggerKind

WRITER = """
import sys, time
from pathlib import Path
from aria.memory import MemoryKind, MemoryStore
store = MemoryStore(Path(sys.argv[1]))
i = 0
while True:
    text = f"turn {i} " + "x" * 400
    memory = store.add(MemoryKind.EPISODIC, text, source="crash", now=time.time(),
                       vector=[float(i % 7), 1.0, 2.0, 3.0])
    print(memory.id, flush=True)  # printed only once the commit returned
    i += 1
"""


@pytest.mark.parametrize("delay_s", [0.4, 0.9, 1.7])
def test_a_crash_mid_write_loses_no_committed_memory(tmp_path: Path, delay_s: float) -> None:
    path = tmp_path / "m.sqlite3"
    writer = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(path)], stdout=subprocess.PIPE, text=True
    )
    time.sleep(delay_s + 1.0)  # start-up, then writes in flight
    writer.send_signal(signal.SIGKILL)
    out, _ = writer.communicate()
    committed = out.split()
    assert len(committed) > 10
    with MemoryStore(path) as store:
        stored = {m.id for m in store.select(limit=-1)}
        assert set(committed) <= stored  # at most one more: committed but not yet printed
        assert len(stored) - len(committed) <= 1
    check = sqlite3.connect(path).execute("PRAGMA integrity_check").fetchone()[0]
    assert check == "ok"


def _claim_all(path: str, ids: list[str], results: multiprocessing.Queue) -> None:  # type: ignore[type-arg]
    with MemoryStore(Path(path)) as store:
        won = [rid for rid in ids if store.reminders.claim(rid, time.time())]
    results.put(won)


def test_each_reminder_fires_once_among_competing_processes(tmp_path: Path) -> None:
    path = tmp_path / "m.sqlite3"
    with MemoryStore(path) as store:
        ids = [
            store.reminders.add(text=f"r{i}", request="test", trigger=TriggerKind.TIME, now=0.0,
                                due_at=1.0).id
            for i in range(40)
        ]  # fmt: skip
    context = multiprocessing.get_context("spawn")
    results = context.Queue()
    workers = [context.Process(target=_claim_all, args=(str(path), ids, results)) for _ in range(4)]
    for worker in workers:
        worker.start()
    won = [rid for _ in workers for rid in results.get(timeout=60)]
    for worker in workers:
        worker.join(timeout=60)
    assert sorted(won) == sorted(ids)  # every reminder claimed, none twice


def test_fired_and_delivered_states_survive_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "m.sqlite3"
    with MemoryStore(path) as store:
        due = store.reminders.add(text="call the bank", request="t", trigger=TriggerKind.TIME,
                                  now=0.0, due_at=10.0)  # fmt: skip
        later = store.reminders.add(text="later", request="t", trigger=TriggerKind.TIME,
                                    now=0.0, due_at=99.0)  # fmt: skip
        assert [r.id for r in store.reminders.due(20.0)] == [due.id]
        assert store.reminders.claim(due.id, 20.0)
        assert store.reminders.next_due() == 99.0
    with MemoryStore(path) as store:  # "restart"
        assert store.reminders.due(20.0) == []
        assert not store.reminders.claim(due.id, 21.0)
        [shown] = store.reminders.deliver(22.0)
        assert shown.id == due.id and shown.delivered_at == 22.0
        assert store.reminders.deliver(23.0) == []
        assert store.reminders.get(later.id).fired_at is None


def test_memories_written_by_one_store_are_read_by_another(tmp_path: Path) -> None:
    path = tmp_path / "m.sqlite3"
    with MemoryStore(path) as first, MemoryStore(path) as second:
        first.add(MemoryKind.SEMANTIC, "I live in Lyon", source="t", now=1.0)
        assert [m.text for m in second.select()] == ["I live in Lyon"]
