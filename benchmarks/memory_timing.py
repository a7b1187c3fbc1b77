"""The timing half of ``memory_eval.py``: retrieval latency at scale, the cost of memory in
a chat request, and time reminders fired by real ``aria memory watch`` processes."""

from __future__ import annotations

import os
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from aria.backends import GenerationJob, TokenEvent
from aria.config import AriaPaths
from aria.memory import MemoryKind, MemoryStore, Mode, begin_turn, preparer, store_file
from aria.memory.records import TriggerKind
from aria.memory.search import Query, search
from aria.node import Node, Prepare
from benchmarks.memory_common import ROOT, embed_all, embedder, fill_store, load

__all__ = ["eval_augmented_request", "eval_latency", "eval_time_firing"]

RETRIEVED = (MemoryKind.SEMANTIC, MemoryKind.EPISODIC)
_PEOPLE = ["Ana", "Bruno", "Chen", "Dara", "Elif", "Farid", "Greta", "Hugo", "Ines", "Jonas"]
_TEMPLATES = [
    "{p} mentioned that the {thing} in {place} costs {n} euros now.",
    "Meeting note {n}: {p} wants the {thing} report before the {place} visit.",
    "{p} a dit que le {thing} de {place} ouvre à {h} heures.",
    "{p} hat gesagt, dass das {thing} in {place} {n} Euro kostet.",
    "{p} dijo que el {thing} de {place} cierra a las {h}.",
    "I read an article about the history of the {thing} in {place}.",
    "We talked about {p}'s new {thing} and the trip to {place}.",
]
_THINGS = ["museum", "bakery", "library", "stadium", "pharmacy", "tram line", "harbour", "cinema"]
_PLACES = ["Porto", "Ghent", "Graz", "Lille", "Bilbao", "Turin", "Aarhus", "Brno", "Cork"]


def _percentiles(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    pick = lambda q: ordered[min(len(ordered) - 1, int(q * len(ordered)))]  # noqa: E731
    return {
        "n": len(values),
        "p50": round(pick(0.5), 3),
        "p95": round(pick(0.95), 3),
        "max": round(ordered[-1], 3),
    }


def _filler(count: int) -> list[dict[str, Any]]:
    items = []
    for i in range(count):
        text = _TEMPLATES[i % len(_TEMPLATES)].format(
            p=_PEOPLE[i % len(_PEOPLE)],
            thing=_THINGS[(i // 7) % len(_THINGS)],
            place=_PLACES[(i // 3) % len(_PLACES)],
            n=10 + i % 490,
            h=6 + i % 15,
        )
        kind = "episodic" if i % 2 else "semantic"
        items.append(
            {
                "id": f"filler-{i}",
                "kind": kind,
                "text": f"{text} (#{i})",
                "days_ago": i % 400,
                "hour": 9 + i % 12,
                "role": "user" if i % 2 else None,
            }
        )
    return items


async def eval_latency(node: Node, folder: Path, total: int) -> dict[str, Any]:
    """Search latency over ``total`` memories: the English user's plus filler."""
    persona = [m for m in load("memories.jsonl") if m["lang"] == "en"]
    memories = persona + _filler(total - len(persona))
    started = time.perf_counter()
    service, ids = await fill_store(node, folder / "big.sqlite3", memories)
    filled_s = time.perf_counter() - started
    cases = [c for c in load("retrieval.jsonl") if c["store"] == "en"]
    vectors = await embed_all(node, [c["query"] for c in cases])
    store = service.store
    _, first = _ms(
        lambda: search(store, Query(cases[0]["query"], vectors[0], RETRIEVED), Mode.HYBRID)
    )
    timings: dict[str, list[float]] = {
        "hybrid": [],
        "vector": [],
        "keyword": [],
        "end_to_end": [],
        "embed": [],
    }
    found = 0
    for _round in range(3):
        for case, vector in zip(cases, vectors, strict=True):
            for mode in Mode:
                query = Query(
                    case["query"], vector if mode is not Mode.KEYWORD else None, RETRIEVED
                )
                hits, ms = _ms(lambda q=query, m=mode: search(store, q, m))
                timings[mode.value].append(ms)
            begin = time.perf_counter()
            await embedder(node).embed([case["query"]])
            timings["embed"].append((time.perf_counter() - begin) * 1000)
            begin = time.perf_counter()
            hits = await service.search(case["query"], limit=5, kinds=RETRIEVED)
            timings["end_to_end"].append((time.perf_counter() - begin) * 1000)
            if _round == 0 and case["expected"]:
                found += any(ids[h.memory.id] in case["expected"] for h in hits)
    answerable = sum(1 for c in cases if c["expected"])
    size = store.path.stat().st_size
    store.close()
    return {
        "memories": total,
        "fill_s": round(filled_s, 1),
        "fill_note": "embedding every memory in batches of 64 plus one durable commit per memory",
        "file_bytes": size,
        "first_search_ms": round(first, 2),
        "search_ms": _percentiles(timings["hybrid"]),
        "vector_only_ms": _percentiles(timings["vector"]),
        "keyword_only_ms": _percentiles(timings["keyword"]),
        "query_embedding_ms": _percentiles(timings["embed"]),
        "search_end_to_end_ms": _percentiles(timings["end_to_end"]),
        "english_recall_at_5_among_all": round(found / max(answerable, 1), 4),
    }


def _ms(call: Any) -> tuple[Any, float]:
    start = time.perf_counter()
    result = call()
    return result, (time.perf_counter() - start) * 1000


# What the default chat model answers with and without memory: does the answer name the fact?
_FACT_QUESTIONS = [
    ("Which instrument do I play?", ["cello"]),
    ("Where does my sister live?", ["rome"]),
    ("What car do I drive?", ["yaris", "toyota"]),
    ("Who is my dentist?", ["moreau"]),
    ("What is my blood type?", ["o negative", "o-negative", "o neg"]),
    ("Where does my best friend live?", ["montreal"]),
    ("What is my job?", ["engineer"]),
    ("What is my cat called?", ["pixel"]),
    ("What is my manager's name?", ["hélène", "helene", "dubois"]),
    ("Which bank am I with?", ["crédit mutuel", "credit mutuel"]),
]


async def eval_augmented_request(
    node: Node, chat: str | None, folder: Path, rounds: int
) -> dict[str, Any]:
    if chat is None:
        return {"skipped": "SmolLM2-135M-Instruct is not installed for this user"}
    persona = [m for m in load("memories.jsonl") if m["lang"] == "en"]
    service, _ = await fill_store(node, folder / "chat.sqlite3", persona)

    async def ask(question: str, memory: bool) -> dict[str, Any]:
        messages = ({"role": "user", "content": question},)
        job = GenerationJob(messages=messages, max_tokens=40, temperature=0.0, seed=1)
        begin = time.perf_counter()
        prepare: Prepare | None = None
        recall_ms = 0.0
        if memory:
            turn = await begin_turn(service, messages, "bench", source="eval")
            recall_ms = (time.perf_counter() - begin) * 1000
            prepare = preparer(turn) if turn else None
        first, parts, prompt_tokens = None, [], 0
        async with await node.generate(job, chat, prepare=prepare) as served:
            async for event in served.events():
                if isinstance(event, TokenEvent):
                    first = first or time.perf_counter()
                    parts.append(event.text)
                else:
                    prompt_tokens = event.prompt_tokens
        end = time.perf_counter()
        return {
            "total_ms": (end - begin) * 1000,
            "ttft_ms": ((first or end) - begin) * 1000,
            "recall_ms": recall_ms,
            "prompt_tokens": prompt_tokens,
            "answer": "".join(parts),
        }

    await ask("Hello", False)  # load the model before timing
    samples: dict[str, list[dict[str, Any]]] = {"plain": [], "memory": []}
    for i in range(rounds):
        question = _FACT_QUESTIONS[i % len(_FACT_QUESTIONS)][0]
        for memory in (False, True) if i % 2 == 0 else (True, False):
            samples["memory" if memory else "plain"].append(await ask(question, memory))
    correct: dict[str, int] = {"plain": 0, "memory": 0}
    answers = []
    for question, expected in _FACT_QUESTIONS:
        pair = {m: await ask(question, m == "memory") for m in ("plain", "memory")}
        for mode, result in pair.items():
            correct[mode] += any(word in result["answer"].lower() for word in expected)
        answers.append(
            {
                "question": question,
                "plain": pair["plain"]["answer"],
                "memory": pair["memory"]["answer"],
            }
        )
    service.store.close()

    def stats(mode: str, key: str) -> dict[str, float]:
        values = [s[key] for s in samples[mode]]
        return {"median": round(statistics.median(values), 2), "max": round(max(values), 2)}

    summary = {
        mode: {k: stats(mode, k) for k in ("total_ms", "ttft_ms", "recall_ms", "prompt_tokens")}
        for mode in samples
    }
    return {
        "model": chat,
        "rounds": rounds,
        **summary,
        "ratio_total": round(
            summary["memory"]["total_ms"]["median"] / summary["plain"]["total_ms"]["median"], 3
        ),
        "ratio_ttft": round(
            summary["memory"]["ttft_ms"]["median"] / summary["plain"]["ttft_ms"]["median"], 3
        ),
        "facts_answered": {mode: f"{n}/{len(_FACT_QUESTIONS)}" for mode, n in correct.items()},
        "answers": answers,
    }


def _watcher(home: Path, name: str) -> tuple[subprocess.Popen[bytes], Path, Path]:
    out, err = home / f"{name}.out", home / f"{name}.err"
    env = {**os.environ, "ARIA_HOME": str(home), "COLUMNS": "200"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "aria", "memory", "watch"],
        cwd=ROOT,
        env=env,
        stdout=out.open("wb"),
        stderr=err.open("wb"),
    )
    return proc, out, err


def _ready(err: Path, timeout_s: float = 60.0) -> float:
    deadline = time.time() + timeout_s
    while time.time() < deadline:
        if err.exists() and b"Watching reminders" in err.read_bytes():
            return time.time()
        time.sleep(0.02)
    raise RuntimeError(f"aria memory watch did not start: {err.read_text(errors='replace')}")


def eval_time_firing(folder: Path) -> dict[str, Any]:
    """Ten reminders; the watcher is killed (SIGKILL) part-way and two are restarted at once."""
    home = folder / "home"
    home.mkdir(parents=True)
    first, out_a, err_a = _watcher(home, "a")
    ready_a = _ready(err_a)
    offsets = [1.0, 1.5, 2.0, 2.5, 3.0, 4.5, 5.5, 6.5, 7.5, 8.5]
    with MemoryStore(store_file(AriaPaths(home), "local")) as store:
        for i, offset in enumerate(offsets):
            store.reminders.add(
                text=f"bench-reminder-{i:02d}",
                request="benchmark",
                trigger=TriggerKind.TIME,
                now=time.time(),
                due_at=ready_a + offset,
            )
    time.sleep(max(0.0, ready_a + 3.25 - time.time()))
    first.send_signal(signal.SIGKILL)
    killed = time.time()
    first.wait()
    second, out_b, err_b = _watcher(home, "b")
    third, out_c, err_c = _watcher(home, "c")
    ready_b = min(_ready(err_b), _ready(err_c))
    time.sleep(max(0.0, ready_a + offsets[-1] + 1.5 - time.time()))
    for proc in (second, third):
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=30)
    printed = b"".join(p.read_bytes() for p in (out_a, out_b, out_c)).decode()
    with MemoryStore(store_file(AriaPaths(home), "local")) as store:
        rows = store.reminders.select()
    late_running, late_down, counts = [], [], {}
    for reminder in rows:
        assert reminder.due_at is not None
        counts[reminder.text] = printed.count(reminder.text)
        if reminder.fired_at is None:
            continue
        late = reminder.fired_at - reminder.due_at
        down = killed - 0.3 <= reminder.due_at <= ready_b
        (late_down if down else late_running).append(round(late, 3))
    return {
        "reminders": len(rows),
        "watchers": "A killed with SIGKILL at +3.25 s; B and C restarted together",
        "downtime_s": round(ready_b - killed, 2),
        "fired": sum(1 for r in rows if r.fired_at is not None),
        "printed_counts": counts,
        "exactly_once": all(r.fired_at is not None for r in rows)
        and all(n == 1 for n in counts.values()),
        "late_s_while_running": late_running,
        "max_late_s_while_running": max(late_running) if late_running else None,
        "late_s_due_while_down": late_down,
    }
