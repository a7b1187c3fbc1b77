"""Energy and token totals over receipts (pure): per model, per peer, served vs consumed.

Totals are kept in groups keyed by (role, model, peer, energy source), so any roll-up
(by model, by peer, by role) can be computed from them, and a compaction checkpoint
can carry the groups of the entries it removed: nothing is lost from the totals when
old entries go.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Group", "Totals", "fold_receipts"]

_SUMS = ("requests", "prompt_tokens", "completion_tokens", "millijoules", "duration_ms")


@dataclass
class Group:
    role: str
    model: str
    peer: str | None
    source: str
    requests: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    millijoules: int = 0
    duration_ms: int = 0

    @property
    def key(self) -> tuple[str, str, str | None, str]:
        return (self.role, self.model, self.peer, self.source)

    def add(self, other: Group) -> None:
        for name in _SUMS:
            setattr(self, name, getattr(self, name) + getattr(other, name))

    def to_json(self) -> dict[str, Any]:
        return {
            "role": self.role,
            "model": self.model,
            "peer": self.peer,
            "source": self.source,
            **{name: getattr(self, name) for name in _SUMS},
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Group:
        return cls(
            role=str(data["role"]),
            model=str(data["model"]),
            peer=data.get("peer"),
            source=str(data["source"]),
            **{name: int(data.get(name, 0)) for name in _SUMS},
        )


@dataclass
class Totals:
    groups: dict[tuple[str, str, str | None, str], Group] = field(default_factory=dict)
    since_ms: int | None = None
    until_ms: int | None = None

    def add(self, group: Group, at_ms: int | None = None) -> None:
        mine = self.groups.get(group.key)
        if mine is None:
            mine = self.groups[group.key] = Group(group.role, group.model, group.peer, group.source)
        mine.add(group)
        if at_ms is not None:
            self.since_ms = at_ms if self.since_ms is None else min(self.since_ms, at_ms)
            self.until_ms = at_ms if self.until_ms is None else max(self.until_ms, at_ms)

    def merge(self, other: Totals) -> None:
        for group in other.groups.values():
            self.add(group)
        for at in (other.since_ms, other.until_ms):
            if at is not None:
                self.since_ms = at if self.since_ms is None else min(self.since_ms, at)
                self.until_ms = at if self.until_ms is None else max(self.until_ms, at)

    def to_json(self) -> dict[str, Any]:
        return {
            "since_ms": self.since_ms,
            "until_ms": self.until_ms,
            "groups": [g.to_json() for g in sorted(self.groups.values(), key=_order)],
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Totals:
        totals = cls(since_ms=data.get("since_ms"), until_ms=data.get("until_ms"))
        for item in data.get("groups", []):
            totals.add(Group.from_json(item))
        return totals

    def rollup(self, by: str) -> list[dict[str, Any]]:
        """Sums per ``role``, ``model`` or ``peer``, with joules and tokens per joule."""
        sums: dict[str | None, dict[str, int]] = {}
        for group in self.groups.values():
            name = getattr(group, by)
            row = sums.setdefault(name, dict.fromkeys(_SUMS, 0))
            for key in _SUMS:
                row[key] += getattr(group, key)
        return [
            {by: name, **row, **_per_joule(row)}
            for name, row in sorted(sums.items(), key=lambda kv: str(kv[0]))
        ]

    def sources(self) -> list[str]:
        return sorted({g.source for g in self.groups.values()})


def _order(group: Group) -> tuple[str, str, str, str]:
    return (group.role, group.model, group.peer or "", group.source)


def _per_joule(row: Mapping[str, int]) -> dict[str, float | None]:
    joules = row["millijoules"] / 1000
    tokens = row["prompt_tokens"] + row["completion_tokens"]
    return {
        "joules": round(joules, 3),
        "tokens_per_joule": round(tokens / joules, 3) if joules > 0 else None,
    }


def fold_receipts(receipts: Iterable[tuple[int, Mapping[str, Any]]]) -> Totals:
    """Totals of ``(at_ms, receipt body)`` pairs."""
    totals = Totals()
    for at_ms, body in receipts:
        energy = body.get("energy") or {}
        group = Group(
            role=str(body.get("role")),
            model=str((body.get("model") or {}).get("id")),
            peer=body.get("peer"),
            source=str(energy.get("source", "none")),
            requests=1,
            prompt_tokens=int(body.get("prompt_tokens", 0)),
            completion_tokens=int(body.get("completion_tokens", 0)),
            millijoules=int(energy.get("millijoules", 0)),
            duration_ms=int(body.get("duration_ms", 0)),
        )
        totals.add(group, at_ms)
    return totals
