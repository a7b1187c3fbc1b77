"""Memory evaluation: retrieval, supersession, statements, reminders, working memory, latency.

Runs ARIA's memory on the hand-written multilingual set in ``benchmarks/data/memory/``
(README there) with the real default embedding model (all-MiniLM-L6-v2, in its worker
process) and reports, with the issue-16 targets:

* retrieval recall@5 (>= 0.85) and MRR@10, hybrid vs vector-only vs keyword-only, by
  question type and language; questions in another language than the memory apart;
* supersession accuracy (supersede / keep both / duplicate);
* statement reading and time-reminder parsing (development and held-out cases);
* event-trigger precision (>= 0.9) and recall (>= 0.8): thresholds chosen on the
  even-numbered reminders, reported on the odd-numbered ones and on all;
* working-memory fitting (the relevant old message kept, no message cut);
* time triggers: real ``aria memory watch`` processes, one killed with SIGKILL and two
  restarted side by side: each reminder fires once, within 1 s of its moment;
* latency: retrieval p95 at 10,000 memories (<= 20 ms), with and without embedding the
  query; a memory-augmented chat request vs a plain one on the default chat model.

Run: ``.venv/bin/python benchmarks/memory_eval.py [--calibrate] [--quick] [--parts a,b]``;
writes ``benchmarks/results/memory_eval.json`` (each part records the load average around
it; ``--parts latency`` re-measures one part on a quieter machine and keeps the others).
``--calibrate`` also writes the thresholds it chose into ``aria/memory/data/thresholds.toml``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import trio  # noqa: E402

from benchmarks.memory_common import DATA, NOW, make_node  # noqa: E402
from benchmarks.memory_suite import (  # noqa: E402
    eval_events,
    eval_retrieval,
    eval_statements,
    eval_supersession,
    eval_time_parsing,
    eval_working,
    write_thresholds,
)
from benchmarks.memory_timing import (  # noqa: E402
    eval_augmented_request,
    eval_latency,
    eval_time_firing,
)

RESULTS = ROOT / "benchmarks" / "results" / "memory_eval.json"
TARGETS = {
    "recall_at_5": 0.85,
    "event_precision": 0.9,
    "event_recall": 0.8,
    "time_trigger_late_s": 1.0,
    "retrieval_p95_ms_at_10k": 20.0,
}


def _cpu() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor()


PARTS = (
    "retrieval", "supersession", "events", "latency", "augmented_request",
    "statements", "time_parsing", "working", "time_firing",
)  # fmt: skip


def _loaded(result: dict[str, Any], before: tuple[float, float, float]) -> dict[str, Any]:
    """``result`` with the load average around it (benchmarks share the machine)."""
    after = os.getloadavg()
    return {**result, "load": {"before": [round(x, 2) for x in before],
                               "after": [round(x, 2) for x in after]}}  # fmt: skip


async def _run_parts(parts: list[str], scratch: Path, quick: bool) -> dict[str, Any]:
    node, chat_model = make_node(scratch / "home")
    jobs: dict[str, Callable[[], Awaitable[dict[str, Any]]]] = {
        "retrieval": lambda: eval_retrieval(node, scratch / "retrieval"),
        "supersession": lambda: eval_supersession(node, scratch / "facts"),
        "events": lambda: eval_events(node, scratch / "events"),
        "latency": lambda: eval_latency(node, scratch / "big", 1_000 if quick else 10_000),
        "augmented_request": lambda: eval_augmented_request(
            node, chat_model, scratch / "chat", 4 if quick else 10
        ),
    }
    offline: dict[str, Callable[[], dict[str, Any]]] = {
        "statements": eval_statements,
        "time_parsing": eval_time_parsing,
        "working": eval_working,
        "time_firing": lambda: eval_time_firing(scratch / "watch"),
    }
    out: dict[str, Any] = {}
    async with node.running():
        for name in (p for p in parts if p in jobs):
            before = os.getloadavg()
            out[name] = _loaded(await jobs[name](), before)
    for name in (p for p in parts if p in offline):
        before = os.getloadavg()
        out[name] = _loaded(await trio.to_thread.run_sync(offline[name]), before)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calibrate", action="store_true", help="write chosen thresholds")
    parser.add_argument("--quick", action="store_true", help="1,000 memories, fewer requests")
    parser.add_argument(
        "--parts", default=",".join(PARTS),
        help="comma-separated parts to (re-)measure; the others are kept from the last JSON",
    )  # fmt: skip
    args = parser.parse_args()
    parts = [p.strip() for p in args.parts.split(",") if p.strip()]
    if unknown := sorted(set(parts) - set(PARTS)):
        parser.error(f"unknown parts {unknown}; choose from {', '.join(PARTS)}")
    previous: dict[str, Any] = {}
    if set(parts) != set(PARTS):
        if not RESULTS.exists():
            parser.error("run every part once before re-measuring some")
        previous = json.loads(RESULTS.read_text(encoding="utf-8"))
    load_before = os.getloadavg()
    started = time.time()
    with tempfile.TemporaryDirectory(prefix="aria-memory-eval-") as scratch:
        results = trio.run(_run_parts, parts, Path(scratch), args.quick)
    results = {name: results.get(name, previous.get(name)) for name in PARTS}
    chosen = {
        "event_similarity": results["events"]["calibrated"]["event_similarity"],
        "event_keyword_similarity": results["events"]["calibrated"]["event_keyword_similarity"],
        "duplicate_similarity": results["supersession"]["calibrated_duplicate_similarity"],
        "recall_similarity": results["retrieval"]["relevance"]["calibrated"]["recall_similarity"],
        "recall_keyword_similarity": results["retrieval"]["relevance"]["calibrated"][
            "recall_keyword_similarity"
        ],
    }
    if args.calibrate:
        write_thresholds(chosen)
    report = {
        "benchmark": "memory_eval",
        "machine": {
            "cpu": _cpu(),
            "cores": os.cpu_count(),
            "python": platform.python_version(),
            "load_average_before": [round(x, 2) for x in load_before],
            "load_average_after": [round(x, 2) for x in os.getloadavg()],
            "wall_s": round(time.time() - started, 1),
            "parts_measured": parts,
        },
        "dataset": {
            p.name: sum(1 for _ in p.open(encoding="utf-8")) for p in sorted(DATA.glob("*.jsonl"))
        },
        "now": NOW.isoformat(),
        "targets": TARGETS,
        "thresholds_chosen": chosen,
        "calibrated_written": args.calibrate,
        **results,
    }
    report["verdict"] = _verdict(report)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    _print(report)


def _verdict(report: dict[str, Any]) -> dict[str, Any]:
    hybrid = report["retrieval"]["modes"]["hybrid"]["all"]
    events = report["events"]["shipped"]["all"]
    firing = report["time_firing"]
    latency = report["latency"]
    return {
        "recall_at_5": [hybrid["recall_at_5"], hybrid["recall_at_5"] >= TARGETS["recall_at_5"]],
        "event_precision": [events["precision"], events["precision"] >= TARGETS["event_precision"]],
        "event_recall": [events["recall"], events["recall"] >= TARGETS["event_recall"]],
        "time_trigger_max_late_s": [
            firing["max_late_s_while_running"],
            firing["max_late_s_while_running"] <= TARGETS["time_trigger_late_s"],
        ],
        "time_trigger_exactly_once": [firing["exactly_once"], firing["exactly_once"]],
        "retrieval_p95_ms": [
            latency["search_end_to_end_ms"]["p95"],
            latency["search_end_to_end_ms"]["p95"] <= TARGETS["retrieval_p95_ms_at_10k"],
        ],
    }


def _print(report: dict[str, Any]) -> None:
    machine = report["machine"]
    print(
        f"memory_eval on {machine['cpu']} ({machine['cores']} cores), "
        f"load {machine['load_average_before']}"
    )
    for mode, numbers in report["retrieval"]["modes"].items():
        a = numbers["all"]
        print(
            f"  retrieval {mode:<8} recall@5 {a['recall_at_5']:.3f}  "
            f"MRR@10 {a['mrr_at_10']:.3f}  (n={a['n']})"
        )
    cross = report["retrieval"]["cross_language"]["hybrid"]
    print(
        f"  cross-language questions (apart): recall@5 {cross['recall_at_5']:.3f} (n={cross['n']})"
    )
    s = report["supersession"]["accuracy"]
    print(f"  supersession accuracy {s['all']:.3f} (n={s['n']})")
    st, tp = report["statements"], report["time_parsing"]
    print(f"  statements {st['accuracy']['all']:.3f} (held-out {st['accuracy']['heldout']:.3f})")
    print(f"  time parsing {tp['accuracy']['all']:.3f} (held-out {tp['accuracy']['heldout']:.3f})")
    ev = report["events"]["shipped"]
    print(
        f"  event triggers precision {ev['all']['precision']:.3f} recall {ev['all']['recall']:.3f}"
        f" (held-out half: {ev['test']['precision']:.3f} / {ev['test']['recall']:.3f})"
    )
    print(
        f"  working memory kept {report['working']['kept_rate']:.3f}, "
        f"cut messages {report['working']['cut_messages']}"
    )
    f = report["time_firing"]
    print(
        f"  time triggers: exactly once {f['exactly_once']}, "
        f"max late {f['max_late_s_while_running']:.3f} s"
    )
    lat = report["latency"]
    print(
        f"  retrieval at {lat['memories']} memories: search p95 {lat['search_ms']['p95']:.2f} ms, "
        f"with query embedding p95 {lat['search_end_to_end_ms']['p95']:.2f} ms"
    )
    aug = report["augmented_request"]
    if aug.get("skipped"):
        print(f"  augmented request: skipped ({aug['skipped']})")
    else:
        print(
            f"  chat request median {aug['plain']['total_ms']['median']:.0f} ms plain vs "
            f"{aug['memory']['total_ms']['median']:.0f} ms with memory (x{aug['ratio_total']:.2f})"
        )
    print(f"  verdict: {json.dumps(report['verdict'])}")
    print(f"wrote {RESULTS.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
