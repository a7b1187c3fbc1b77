"""docs/router.md shows the shipped routing table exactly, and the figures it quotes exist."""

from __future__ import annotations

import json
from pathlib import Path

from aria.router import Category, load_dataset, load_routing_table

DOC = Path(__file__).resolve().parents[2] / "docs" / "router.md"
RESULTS = Path(__file__).resolve().parents[2] / "benchmarks" / "results" / "router_eval.json"


def table_markdown() -> str:
    """The routing table as the doc renders it (one block per category)."""
    table = load_routing_table()
    limits = table.limits
    lines = [
        f"Limits: `long_context_tokens = {limits.long_context_tokens}`, "
        f"`answer_reserve_tokens = {limits.answer_reserve_tokens}`.",
        "",
    ]
    lines += ["| category | profile | models, best first |", "|---|---|---|"]
    for category in Category:
        for profile, models in table.rows[category].items():
            lines.append(f"| {category.value} | {profile} | {', '.join(models)} |")
    return "\n".join(lines)


def test_the_doc_shows_the_shipped_table() -> None:
    assert table_markdown() in DOC.read_text(encoding="utf-8")


def test_the_doc_quotes_the_measured_quality_and_dataset_size() -> None:
    doc = DOC.read_text(encoding="utf-8")
    report = json.loads(RESULTS.read_text(encoding="utf-8"))
    assert f"macro-F1 **{report['quality']['macro_f1']:.3f}**" in doc
    assert f"{len(load_dataset()):,} labeled queries" in doc
