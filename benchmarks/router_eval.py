"""SmartRouter benchmark: classifier quality on the held-out split, and decision latency.

Quality: the shipped classifier (``aria/router/data/classifier.npz``, trained on the
``train`` split only) labels every ``test`` row of ``aria/router/data/queries.jsonl``;
reported are macro-F1, per-class precision/recall/F1, the confusion matrix (rows: true
category, columns: predicted), accuracy on English and non-English rows, and every
miss. Latency: ``route()`` (classification included) on each held-out query, timed
with ``perf_counter_ns`` over many repetitions, with the shipped table, the real
catalog and a node profile of ``balanced`` with a few installed models; and the same
for ``RouteRequest.from_openai`` + ``route`` on a chat body. Targets (issue 4):
macro-F1 >= 0.90 and p50 < 1 ms.

Run: ``.venv/bin/python benchmarks/router_eval.py [--repeat 200]``; writes
``benchmarks/results/router_eval.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sklearn.metrics import confusion_matrix, f1_score, precision_recall_fscore_support  # noqa: E402

from aria.catalog import ModelId, load_catalog  # noqa: E402
from aria.router import (  # noqa: E402
    TEXT_CATEGORIES,
    Availability,
    RouteRequest,
    load_classifier,
    load_dataset,
    load_routing_table,
    route,
)
from aria.router.dataset import dataset_sha256  # noqa: E402
from aria.router.loader import read_packaged  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results" / "router_eval.json"
INSTALLED = ("SmolLM2-135M-Instruct", "Qwen3-1.7B", "BitNet-b1.58-2B-4T", "Qwen3-0.6B")


def quality(test: list[Any], classifier: Any) -> dict[str, Any]:
    labels = [c.value for c in TEXT_CATEGORIES]
    truth = [q.label.value for q in test]
    predicted = [classifier.classify(q.text).category.value for q in test]
    precision, recall, f1, support = precision_recall_fscore_support(
        truth, predicted, labels=labels, zero_division=0
    )
    per_class = {
        label: {
            "precision": round(float(p), 4),
            "recall": round(float(r), 4),
            "f1": round(float(f), 4),
            "support": int(s),
        }
        for label, p, r, f, s in zip(labels, precision, recall, f1, support, strict=True)
    }

    def accuracy(rows: list[int]) -> float:
        return round(sum(truth[i] == predicted[i] for i in rows) / max(len(rows), 1), 4)

    english = [i for i, q in enumerate(test) if q.lang == "en"]
    other = [i for i, q in enumerate(test) if q.lang != "en"]
    misses = [
        {"text": q.text[:120], "lang": q.lang, "true": truth[i], "predicted": predicted[i]}
        for i, q in enumerate(test)
        if truth[i] != predicted[i]
    ]
    return {
        "macro_f1": round(float(f1_score(truth, predicted, labels=labels, average="macro")), 4),
        "accuracy": accuracy(list(range(len(test)))),
        "accuracy_english": accuracy(english),
        "accuracy_non_english": accuracy(other),
        "per_class": per_class,
        "confusion_matrix": {
            "labels": labels,
            "rows_true_columns_predicted": confusion_matrix(
                truth, predicted, labels=labels
            ).tolist(),
        },
        "misses": misses,
    }


def percentiles(samples_ns: list[int]) -> dict[str, float]:
    ordered = sorted(samples_ns)

    def at(q: float) -> float:
        return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))] / 1000, 2)

    return {
        "p50_us": at(0.50),
        "p90_us": at(0.90),
        "p99_us": at(0.99),
        "mean_us": round(statistics.fmean(ordered) / 1000, 2),
        "samples": len(ordered),
    }


def latency(test: list[Any], repeat: int) -> dict[str, Any]:
    catalog = load_catalog()
    table = load_routing_table()
    available = Availability.build(
        profile="balanced",
        gpu=False,
        catalog=catalog.entries,
        installed=[catalog.get(m) for m in INSTALLED],
        default_model=ModelId(catalog.default_model_id),
        context_cap=8192,
    )
    requests = [RouteRequest.from_text(q.text) for q in test]
    bodies = [{"model": "auto", "messages": [{"role": "user", "content": q.text}]} for q in test]
    for request in requests:  # warm-up: first-call costs are not decision latency
        route(request, table, available)
    route_ns: list[int] = []
    body_ns: list[int] = []
    clock = time.perf_counter_ns
    for _ in range(repeat):
        for request, body in zip(requests, bodies, strict=True):
            start = clock()
            route(request, table, available)
            middle = clock()
            route(RouteRequest.from_openai(body), table, available)
            end = clock()
            route_ns.append(middle - start)
            body_ns.append(end - middle)
    return {
        "profile": "balanced",
        "installed": list(INSTALLED),
        "route": percentiles(route_ns),
        "from_openai_plus_route": percentiles(body_ns),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=200, help="passes over the held-out set")
    args = parser.parse_args()
    dataset = load_dataset()
    test = [q for q in dataset if q.split == "test"]
    classifier = load_classifier()
    report = {
        "dataset": {
            "rows": len(dataset),
            "train": len(dataset) - len(test),
            "test": len(test),
            "sha256": dataset_sha256(read_packaged("queries.jsonl")),
            "languages": sorted({q.lang for q in dataset}),
        },
        "classifier": {k: classifier.meta[k] for k in ("c", "sklearn", "train_rows")},
        "quality": quality(test, classifier),
        "latency": latency(test, args.repeat),
        "machine": {
            "platform": platform.platform(),
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "load_average": [round(x, 2) for x in os.getloadavg()],
        },
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    q, lat = report["quality"], report["latency"]
    print(f"held-out: {len(test)} queries, macro-F1 {q['macro_f1']:.4f}, acc {q['accuracy']:.4f}")
    for label, row in q["per_class"].items():
        print(
            f"  {label:<13} P {row['precision']:.3f}  R {row['recall']:.3f}  "
            f"F1 {row['f1']:.3f}  n={row['support']}"
        )
    matrix = q["confusion_matrix"]
    print("confusion matrix (rows true, columns predicted):", " ".join(matrix["labels"]))
    for label, row in zip(matrix["labels"], matrix["rows_true_columns_predicted"], strict=True):
        print(f"  {label:<13} " + " ".join(f"{n:4d}" for n in row))
    r, b = lat["route"], lat["from_openai_plus_route"]
    print(f"route(): p50 {r['p50_us']} us, p99 {r['p99_us']} us ({r['samples']} decisions)")
    print(f"from_openai + route(): p50 {b['p50_us']} us, p99 {b['p99_us']} us")
    print(f"wrote {RESULTS.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
