"""Prospective memory on disk: reminders, and firing each exactly once.

Firing is a claim: ``UPDATE … SET fired_at = ? WHERE id = ? AND fired_at IS NULL``
committed before anything is shown. Only one claimant (thread or process: the chat, the
API, ``aria memory watch``) sees its update count as 1, and a claim survives a restart,
so a reminder fires once even when two processes watch the same store or one dies right
after firing. Showing it is separate (``delivered_at``): a reminder that fired while no
one was there to see it is delivered at the next chance, once.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from aria.errors import MemoryNotFound, MemoryStoreError
from aria.memory.records import Reminder, ReminderStatus, TriggerKind, new_id
from aria.memory.vectors import as_blob, from_blob

__all__ = ["ReminderBook"]

_COLUMNS = (
    "id, text, request, trigger, created_at, due_at, event, model, fired_at, fired_by, delivered_at"
)


def _reminder(row: Sequence[Any]) -> Reminder:
    return Reminder(
        id=row[0],
        text=row[1],
        request=row[2],
        trigger=TriggerKind(row[3]),
        created_at=row[4],
        due_at=row[5],
        event=row[6],
        model=row[7],
        fired_at=row[8],
        fired_by=row[9],
        delivered_at=row[10],
    )


class ReminderBook:
    """The reminders of one memory store (same file, same connection and lock)."""

    def __init__(self, db: sqlite3.Connection, lock: threading.RLock) -> None:
        self._db = db
        self._lock = lock

    def _run(self, sql: str, params: Sequence[Any] = (), *, write: bool = False) -> list[Any]:
        with self._lock:
            try:
                if write:
                    with self._db:
                        cursor = self._db.execute(sql, params)
                        return [cursor.rowcount]
                return self._db.execute(sql, params).fetchall()
            except sqlite3.Error as exc:
                raise MemoryStoreError(f"the memory file failed: {exc}") from exc

    def add(
        self,
        *,
        text: str,
        request: str,
        trigger: TriggerKind,
        now: float,
        due_at: float | None = None,
        event: str | None = None,
        event_vector: list[float] | None = None,
        model: str | None = None,
        reminder_id: str | None = None,
    ) -> Reminder:
        reminder = Reminder(
            id=reminder_id or new_id("r"),
            text=text,
            request=request,
            trigger=trigger,
            created_at=now,
            due_at=due_at,
            event=event,
            model=model,
        )
        blob = None if event_vector is None else as_blob(event_vector)
        self._run(
            "INSERT INTO reminders (id, text, request, trigger, created_at, due_at, event, "
            "event_embedding, model) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (reminder.id, text, request, trigger.value, now, due_at, event, blob, model),
            write=True,
        )
        return reminder

    def restore(self, reminder: Reminder) -> bool:
        """Insert an exported reminder as it was (import); False when its id exists."""
        [count] = self._run(
            f"INSERT OR IGNORE INTO reminders ({_COLUMNS}) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                reminder.id,
                reminder.text,
                reminder.request,
                reminder.trigger.value,
                reminder.created_at,
                reminder.due_at,
                reminder.event,
                reminder.model,
                reminder.fired_at,
                reminder.fired_by,
                reminder.delivered_at,
            ),  # fmt: skip
            write=True,
        )
        return bool(count == 1)

    def get(self, reminder_id: str) -> Reminder:
        """Raises: MemoryNotFound."""
        rows = self._run(f"SELECT {_COLUMNS} FROM reminders WHERE id = ?", (reminder_id,))
        if not rows:
            raise MemoryNotFound(f"no reminder has the id {reminder_id!r}", param="id")
        return _reminder(rows[0])

    def select(self, status: ReminderStatus | None = None) -> list[Reminder]:
        where = {
            None: "1",
            ReminderStatus.PENDING: "fired_at IS NULL",
            ReminderStatus.FIRED: "fired_at IS NOT NULL AND delivered_at IS NULL",
            ReminderStatus.DELIVERED: "delivered_at IS NOT NULL",
        }[status]
        rows = self._run(
            f"SELECT {_COLUMNS} FROM reminders WHERE {where} ORDER BY coalesce(due_at, "
            "created_at), pk"
        )
        return [_reminder(row) for row in rows]

    def due(self, now: float) -> list[Reminder]:
        """Pending time reminders whose moment has come."""
        rows = self._run(
            f"SELECT {_COLUMNS} FROM reminders WHERE trigger = 'time' AND fired_at IS NULL "
            "AND due_at <= ? ORDER BY due_at",
            (now,),
        )
        return [_reminder(row) for row in rows]

    def next_due(self) -> float | None:
        """When the next pending time reminder is due."""
        rows = self._run(
            "SELECT min(due_at) FROM reminders WHERE trigger = 'time' AND fired_at IS NULL"
        )
        return None if not rows or rows[0][0] is None else float(rows[0][0])

    def waiting(self, trigger: TriggerKind) -> list[tuple[Reminder, Any]]:
        """Pending reminders of ``trigger`` with their event vectors (None if absent)."""
        rows = self._run(
            f"SELECT {_COLUMNS}, event_embedding FROM reminders "
            "WHERE trigger = ? AND fired_at IS NULL ORDER BY pk",
            (trigger.value,),
        )
        return [(_reminder(r), None if r[11] is None else from_blob(r[11])) for r in rows]

    def set_event_vector(self, reminder_id: str, vector: list[float]) -> None:
        self._run(
            "UPDATE reminders SET event_embedding = ? WHERE id = ?",
            (as_blob(vector), reminder_id),
            write=True,
        )

    def claim(self, reminder_id: str, now: float, fired_by: str | None = None) -> bool:
        """Fire the reminder if nobody has: True for exactly one caller, ever."""
        [count] = self._run(
            "UPDATE reminders SET fired_at = ?, fired_by = ? WHERE id = ? AND fired_at IS NULL",
            (now, fired_by, reminder_id),
            write=True,
        )
        return bool(count == 1)

    def deliver(self, now: float) -> list[Reminder]:
        """Fired reminders nobody has seen yet, marked delivered (each returned once)."""
        with self._lock:
            rows = self._run(
                f"SELECT {_COLUMNS} FROM reminders WHERE fired_at IS NOT NULL "
                "AND delivered_at IS NULL ORDER BY fired_at"
            )
            delivered = []
            for row in rows:
                [count] = self._run(
                    "UPDATE reminders SET delivered_at = ? WHERE id = ? AND delivered_at IS NULL",
                    (now, row[0]),
                    write=True,
                )
                if count == 1:
                    delivered.append(replace(_reminder(row), delivered_at=now))
            return delivered
