"""The classifier's labeled queries (``data/queries.jsonl``), parsed and checked (pure).

One JSON object per line::

    {"text": "...", "label": "code", "lang": "fr", "split": "train"}
    {"text": "...", "label": "multilingual", "lang": "de", "task": "reasoning", "split": "test"}

``label`` is the category the router must pick; ``lang`` an ISO 639-1 code; ``task`` (only
on multilingual rows) is what the query asks for, which trains the task head. ``split`` is
stored, never recomputed, so the held-out set stays fixed as rows are added. The first
rows were split per label (every fourth row in BLAKE2b order of the text went to
``test``); rows added since take ``split_for(text)``, which holds out a quarter by hash.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final, Literal

from aria.router.categories import TEXT_CATEGORIES, Category

__all__ = ["DatasetError", "LabeledQuery", "dataset_sha256", "parse_dataset", "split_for"]

Split = Literal["train", "test"]
_SPLITS: Final = ("train", "test")
# Code and maths keep their label in any language; other tasks become multilingual.
_LANGUAGE_NEUTRAL: Final = frozenset({Category.CODE, Category.MATH})


class DatasetError(ValueError):
    """A malformed dataset line (a developer error: the file ships in the package)."""


@dataclass(frozen=True)
class LabeledQuery:
    text: str
    label: Category
    lang: str
    task: Category
    split: Split

    @property
    def foreign(self) -> bool:
        """Not English: what the language head learns."""
        return self.lang != "en"


def dataset_sha256(data: bytes) -> str:
    """The hash the weights file records, so weights and dataset cannot drift apart."""
    return hashlib.sha256(data).hexdigest()


def split_for(text: str) -> Split:
    """The split a new row gets: a quarter of rows, chosen by hash, are held out."""
    digest = hashlib.blake2b(text.encode("utf-8"), digest_size=8).digest()
    return "test" if int.from_bytes(digest, "big") % 4 == 0 else "train"


def parse_dataset(lines: Iterable[str]) -> tuple[LabeledQuery, ...]:
    """Parse and validate every line.

    Raises:
        DatasetError: bad JSON, an unknown label, split or task, a duplicate text, or a
            label that contradicts the language policy (line number in the message).
    """
    rows: list[LabeledQuery] = []
    seen: set[str] = set()
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            row = _row(json.loads(line))
        except (json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
            raise DatasetError(f"queries.jsonl line {number}: {exc}") from exc
        if row.text in seen:
            raise DatasetError(f"queries.jsonl line {number}: duplicate text {row.text[:40]!r}")
        seen.add(row.text)
        rows.append(row)
    return tuple(rows)


def _row(raw: dict[str, object]) -> LabeledQuery:
    text, lang, split = raw["text"], raw["lang"], raw["split"]
    if not isinstance(text, str) or not text.strip():
        raise ValueError("text must be a non-empty string")
    if not isinstance(lang, str) or len(lang) != 2:
        raise ValueError(f"lang must be a two-letter code, not {lang!r}")
    if split not in _SPLITS:
        raise ValueError(f"split must be train or test, not {split!r}")
    label = Category(str(raw["label"]))
    if label not in TEXT_CATEGORIES:
        raise ValueError(f"{label} is decided by rules, not by the classifier")
    task = Category(str(raw.get("task", label)))
    if label is Category.MULTILINGUAL:
        if lang == "en" or task not in (Category.CHAT, Category.REASONING):
            raise ValueError("multilingual rows are non-English chat or reasoning (set task)")
    elif task is not label:
        raise ValueError("only multilingual rows carry a task")
    elif lang != "en" and label not in _LANGUAGE_NEUTRAL:
        raise ValueError(f"a non-English {label} query is labeled multilingual")
    return LabeledQuery(text, label, lang, task, split)
