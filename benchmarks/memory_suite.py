"""The quality half of ``memory_eval.py``: each function measures one part on the dataset."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from aria.memory import MemoryKind, MemoryService, MemoryStore, Mode, TriggerKind
from aria.memory.facts import Duplicate, Supersede, decide, slot_of
from aria.memory.prospective import match_event, measured_thresholds
from aria.memory.statements import (
    EventReminder,
    ModelReminder,
    Preference,
    Remember,
    TimeReminder,
    UnclearReminder,
    read_message,
)
from aria.memory.text import keywords
from aria.memory.working import estimate_tokens, fit_window
from aria.node import Node
from benchmarks.memory_common import NOW, ROOT, embedder, fill_store, load

__all__ = [
    "eval_events",
    "eval_retrieval",
    "eval_statements",
    "eval_supersession",
    "eval_time_parsing",
    "eval_working",
    "write_thresholds",
]

THRESHOLDS = ROOT / "aria" / "memory" / "data" / "thresholds.toml"
RETRIEVED = (MemoryKind.SEMANTIC, MemoryKind.EPISODIC)


def _rates(rows: list[dict[str, Any]]) -> dict[str, Any]:
    if not rows:
        return {"n": 0, "recall_at_1": 0.0, "recall_at_5": 0.0, "mrr_at_10": 0.0}
    ranks = [r["rank"] for r in rows]
    return {
        "n": len(rows),
        "recall_at_1": round(sum(1 for k in ranks if k == 1) / len(rows), 4),
        "recall_at_5": round(sum(1 for k in ranks if k and k <= 5) / len(rows), 4),
        "mrr_at_10": round(sum(1 / k for k in ranks if k) / len(rows), 4),
    }


def _grouped(rows: list[dict[str, Any]], key: str) -> dict[str, Any]:
    groups: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        groups[row[key]].append(row)
    return {name: _rates(items) for name, items in sorted(groups.items())}


async def eval_retrieval(node: Node, folder: Path) -> dict[str, Any]:
    memories, cases = load("memories.jsonl"), load("retrieval.jsonl")
    services = {}
    for lang in sorted({m["lang"] for m in memories}):
        services[lang] = await fill_store(
            node, folder / f"{lang}.sqlite3", [m for m in memories if m["lang"] == lang]
        )
    modes: dict[str, Any] = {}
    cross: dict[str, Any] = {}
    relevance: list[dict[str, Any]] = []
    misses: list[dict[str, Any]] = []
    for mode in Mode:
        rows, cross_rows = [], []
        for index, case in enumerate(cases):
            service, ids = services[case["store"]]
            hits = await service.search(case["query"], limit=10, kinds=RETRIEVED, mode=mode)
            found = [ids[h.memory.id] for h in hits]
            rank = next((i + 1 for i, f in enumerate(found) if f in case["expected"]), 0)
            row = {"id": case["id"], "type": case["type"], "lang": case["lang"], "rank": rank}
            if case["type"] == "cross":
                cross_rows.append(row)
            elif case["expected"]:
                rows.append(row)
                if mode is Mode.HYBRID and not (rank and rank <= 5):
                    misses.append({**row, "query": case["query"], "got": found[:5]})
            if mode is Mode.HYBRID and case["type"] != "cross":
                relevance.append(_relevance_row(index, case, hits, ids))
        modes[mode.value] = {
            "all": _rates(rows),
            "by_type": _grouped(rows, "type"),
            "by_lang": _grouped(rows, "lang"),
        }
        cross[mode.value] = _rates(cross_rows)
    for service, _ in services.values():
        service.store.close()
    return {
        "modes": modes,
        "cross_language": cross,
        "hybrid_misses": misses,
        "relevance": _relevance(relevance),
    }


def _relevance_row(
    index: int, case: dict[str, Any], hits: list[Any], ids: dict[str, str]
) -> dict[str, Any]:
    """What the prompt filter sees for one question: the similarity and keyword match of
    the expected memory (answerable) or of every top-5 hit (unanswerable)."""
    top = hits[:5]
    if case["expected"]:
        right = [h for h in top if ids[h.memory.id] in case["expected"]]
        items = [(h.similarity or 0.0, h.keyword_rank is not None) for h in right[:1]]
    else:
        items = [(h.similarity or 0.0, h.keyword_rank is not None) for h in top]
    return {
        "half": index % 2,
        "answerable": bool(case["expected"]),
        "items": items,
        "time": case["type"] == "episodic_time",
    }


def _passes(item: tuple[float, bool], sim: float, kw: float) -> bool:
    similarity, keyword = item
    return similarity >= sim or (keyword and similarity >= kw)


def _relevance_score(rows: list[dict[str, Any]], sim: float, kw: float) -> dict[str, float]:
    answerable = [r for r in rows if r["answerable"] and not r["time"]]
    negative = [r for r in rows if not r["answerable"]]
    kept = sum(1 for r in answerable if r["items"] and _passes(r["items"][0], sim, kw))
    leaked = sum(1 for r in negative if any(_passes(i, sim, kw) for i in r["items"]))
    return {
        "right_memory_kept": round(kept / max(len(answerable), 1), 4),
        "unanswerable_with_a_memory_in_prompt": round(leaked / max(len(negative), 1), 4),
    }


def _relevance(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Choose the prompt thresholds on half the questions (Youden's J), report the other."""
    grid = [round(x, 2) for x in np.arange(0.1, 0.8, 0.02)]
    calib = [r for r in rows if r["half"] == 0]
    best = max(
        ((s, k) for s in grid for k in grid if k <= s),
        key=lambda p: (
            _relevance_score(calib, *p)["right_memory_kept"]
            - _relevance_score(calib, *p)["unanswerable_with_a_memory_in_prompt"],
            p[0],
        ),
    )
    shipped = measured_thresholds()
    test = [r for r in rows if r["half"] == 1]
    return {
        "calibrated": {"recall_similarity": best[0], "recall_keyword_similarity": best[1]},
        "calibrated_on_test_half": _relevance_score(test, *best),
        "shipped": _relevance_score(
            rows, shipped.recall_similarity, shipped.recall_keyword_similarity
        ),
        "note": "time-scoped questions are filtered by their period, not by similarity",
    }


async def eval_supersession(node: Node, folder: Path) -> dict[str, Any]:
    cases = load("supersession.jsonl")
    folder.mkdir(parents=True, exist_ok=True)
    pairs = []
    for case in cases:
        old_vec, new_vec = await embedder(node).embed([case["old"], case["new"]])
        pairs.append((case, float(np.dot(old_vec, new_vec))))
    grid = [round(x, 3) for x in np.arange(0.80, 0.995, 0.005)]

    def accuracy(rows: Iterable[tuple[dict[str, Any], float]], threshold: float) -> float:
        rows = list(rows)
        return sum(_decided(c, s, threshold) == c["expected"] for c, s in rows) / max(len(rows), 1)

    calib = [p for i, p in enumerate(pairs) if i % 2 == 0]
    chosen = max(grid, key=lambda t: (accuracy(calib, t), -abs(t - 0.9)))
    outcomes, wrong = [], []
    for index, (case, _) in enumerate(pairs):  # the real path: two MemoryService.add calls
        store = MemoryStore(folder / f"{index}.sqlite3")
        service = MemoryService(store, embedder(node), clock=NOW.timestamp)
        first = await service.add(case["old"], source="eval")
        second = await service.add(case["new"], source="eval")
        store.close()
        assert first.memory is not None
        got = (
            "duplicate"
            if second.duplicate_of == first.memory.id
            else "supersede"
            if first.memory.id in second.superseded
            else "keep"
        )
        outcomes.append((case, got))
        if got != case["expected"]:
            wrong.append(
                {
                    "id": case["id"],
                    "old": case["old"],
                    "new": case["new"],
                    "expected": case["expected"],
                    "got": got,
                }
            )
    by_expected = {
        label: round(sum(g == label for c, g in outcomes if c["expected"] == label) / n, 4)
        for label, n in Counter(c["expected"] for c in cases).items()
    }
    right = sum(g == c["expected"] for c, g in outcomes)
    return {
        "accuracy": {
            "all": round(right / len(cases), 4),
            "n": len(cases),
            "by_expected": by_expected,
        },
        "calibrated_duplicate_similarity": chosen,
        "calibrated_accuracy_test_half": round(
            accuracy([p for i, p in enumerate(pairs) if i % 2], chosen), 4
        ),
        "wrong": wrong,
    }


def _decided(case: dict[str, Any], similarity: float, threshold: float) -> str:
    from aria.memory.records import Memory

    old_slot = slot_of(case["old"])
    old = Memory(
        id="m_old",
        kind=MemoryKind.SEMANTIC,
        text=case["old"],
        created_at=0,
        source="eval",
        slot=old_slot.name if old_slot else None,
    )
    outcome = decide(case["new"], slot_of(case["new"]), [(old, similarity)], duplicate_at=threshold)
    if isinstance(outcome, Duplicate):
        return "duplicate"
    return "supersede" if isinstance(outcome, Supersede) else "keep"


_INTENTS: dict[type, str] = {
    Preference: "procedural",
    TimeReminder: "time",
    EventReminder: "event",
    ModelReminder: "model",
    UnclearReminder: "unclear",
}


def eval_statements() -> dict[str, Any]:
    cases, wrong = load("statements.jsonl"), []
    right: dict[str, list[bool]] = defaultdict(list)
    for case in cases:
        intent = read_message(case["text"], NOW)
        got = (
            "none"
            if intent is None
            else (intent.kind.value if isinstance(intent, Remember) else _INTENTS[type(intent)])
        )
        ok = got == case["expected"]
        right["heldout" if case.get("heldout") else "development"].append(ok)
        right[f"lang:{case['lang']}"].append(ok)
        if not ok:
            wrong.append(
                {"id": case["id"], "text": case["text"], "expected": case["expected"], "got": got}
            )
    return {"accuracy": _accuracies(right, len(cases)), "wrong": wrong}


def _accuracies(right: dict[str, list[bool]], n: int) -> dict[str, Any]:
    every = right["development"] + right["heldout"]
    out: dict[str, Any] = {"all": round(sum(every) / len(every), 4), "n": n}
    for key, oks in sorted(right.items()):
        out[key] = round(sum(oks) / len(oks), 4)
    return out


def eval_time_parsing() -> dict[str, Any]:
    cases, wrong = load("time_reminders.jsonl"), []
    right: dict[str, list[bool]] = defaultdict(list)
    for case in cases:
        intent = read_message(case["text"], NOW)
        if case["due"] is None:
            ok, got = not isinstance(intent, TimeReminder), None
        else:
            got = (
                (intent.due.strftime("%Y-%m-%dT%H:%M"), intent.task)
                if isinstance(intent, TimeReminder)
                else None
            )
            ok = got == (case["due"], case["task"])
        right["heldout" if case.get("heldout") else "development"].append(ok)
        right[f"lang:{case['lang']}"].append(ok)
        if not ok:
            wrong.append(
                {
                    "id": case["id"],
                    "text": case["text"],
                    "expected": [case["due"], case["task"]],
                    "got": got,
                }
            )
    return {"accuracy": _accuracies(right, len(cases)), "wrong": wrong}


async def eval_events(node: Node, folder: Path) -> dict[str, Any]:
    """Each reminder is set through MemoryService.remind on the memory of the user of its
    language (its topic takes their memories' meaning), then every message is matched."""
    reminders, rows = load("event_reminders.jsonl"), []
    memories = load("memories.jsonl")
    services = {
        lang: (
            await fill_store(
                node, folder / f"{lang}.sqlite3", [m for m in memories if m["lang"] == lang]
            )
        )[0]
        for lang in sorted({r["lang"] for r in reminders})
    }
    for index, case in enumerate(reminders):
        service = services[case["lang"]]
        reminder = await service.remind(case["request"])
        [topic] = [
            v for r, v in service.store.reminders.waiting(TriggerKind.EVENT) if r.id == reminder.id
        ]
        vectors = await embedder(node).embed([m["text"] for m in case["messages"]])
        for message, vector in zip(case["messages"], vectors, strict=True):
            match = match_event(
                vector,
                keywords(message["text"]),
                topic,
                keywords(reminder.event or ""),
                measured_thresholds(),
            )
            rows.append(
                {
                    "half": index % 2,
                    "lang": case["lang"],
                    "fires": message["fires"],
                    "similarity": match.similarity,
                    "shared": bool(match.shared),
                    "unparsed": False,
                    "text": message["text"],
                    "event": reminder.event,
                }
            )
    for service in services.values():
        service.store.close()
    grid = [round(x, 2) for x in np.arange(0.0, 0.9, 0.01)]
    calib = [r for r in rows if r["half"] == 0]

    def key(pair: tuple[float, float]) -> tuple[bool, float, float, float]:
        score = _event_scores(calib, *pair)
        return (score["precision"] >= 0.9, score["recall"], score["precision"], pair[0])

    best = max(((s, k) for s in grid for k in grid if k <= s), key=key)
    shipped = measured_thresholds()
    shipped_pair = (shipped.event_similarity, shipped.event_keyword_similarity)
    return {
        "n_reminders": len(reminders),
        "n_messages": len(rows),
        "calibrated": {"event_similarity": best[0], "event_keyword_similarity": best[1]},
        "calibrated_scores": {
            half: _event_scores(part, *best) for half, part in _halves(rows).items()
        },
        "shipped": {
            half: _event_scores(part, *shipped_pair) for half, part in _halves(rows).items()
        },
        "shipped_by_lang": {
            lang: _event_scores([r for r in rows if r["lang"] == lang], *shipped_pair)
            for lang in sorted({r["lang"] for r in rows})
        },
        "shipped_by_kind": {
            "messages sharing a topic word": _event_scores(
                [r for r in rows if r["shared"]], *shipped_pair
            ),
            "messages sharing none": _event_scores(
                [r for r in rows if not r["shared"]], *shipped_pair
            ),
        },
        "shipped_errors": [
            {k: r[k] for k in ("text", "fires", "similarity", "shared") if k in r}
            | {"event": r.get("event")}
            for r in rows
            if _fires(r, *shipped_pair) != r["fires"]
        ],
    }


def _halves(rows: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    return {
        "calibration": [r for r in rows if r["half"] == 0],
        "test": [r for r in rows if r["half"] == 1],
        "all": rows,
    }


def _fires(row: dict[str, Any], sim: float, kw: float) -> bool:
    if row["unparsed"] or row["similarity"] is None:
        return False
    return bool(row["similarity"] >= sim or (row["shared"] and row["similarity"] >= kw))


def _event_scores(rows: list[dict[str, Any]], sim: float, kw: float) -> dict[str, Any]:
    tp = sum(1 for r in rows if r["fires"] and _fires(r, sim, kw))
    fp = sum(1 for r in rows if not r["fires"] and _fires(r, sim, kw))
    fn = sum(1 for r in rows if r["fires"] and not _fires(r, sim, kw))
    return {
        "n": len(rows),
        "precision": round(tp / max(tp + fp, 1), 4),
        "recall": round(tp / max(tp + fn, 1), 4),
        "false_positives": fp,
        "false_negatives": fn,
    }


def eval_working() -> dict[str, Any]:
    cases, kept, cut = load("working.jsonl"), 0, 0
    for case in cases:
        fitted = fit_window(case["messages"], case["budget"])
        kept += case["messages"][case["keep"]] in fitted.messages
        cut += sum(1 for m in fitted.messages if m not in case["messages"])
        assert sum(estimate_tokens(m) for m in fitted.messages) <= case["budget"]
    return {"n": len(cases), "kept_rate": round(kept / len(cases), 4), "cut_messages": cut}


def write_thresholds(chosen: dict[str, float]) -> None:
    """Rewrite the values of ``data/thresholds.toml``, keeping its comments."""
    lines = []
    for line in THRESHOLDS.read_text(encoding="utf-8").splitlines():
        name = line.split("=", 1)[0].strip()
        lines.append(
            f"{name} = {chosen[name]}" if name in chosen and not line.startswith("#") else line
        )
    THRESHOLDS.write_text("\n".join(lines) + "\n", encoding="utf-8")
