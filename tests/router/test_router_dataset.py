"""The labeled dataset: size, languages, balance, hard cases; weights cannot drift from it."""

from __future__ import annotations

from collections import Counter

import pytest

from aria.router import TEXT_CATEGORIES, Category, load_classifier, load_dataset
from aria.router.dataset import DatasetError, dataset_sha256, parse_dataset, split_for
from aria.router.loader import read_packaged


def test_size_languages_and_balance() -> None:
    rows = load_dataset()
    assert len(rows) >= 400
    labels = Counter(row.label for row in rows)
    assert set(labels) == set(TEXT_CATEGORIES)
    for category, count in labels.items():
        assert 0.12 <= count / len(rows) <= 0.30, (category, count)
    languages = {row.lang for row in rows if row.label is Category.MULTILINGUAL}
    assert len(languages) >= 5
    assert {"fr", "de", "es", "zh", "ja", "ar", "ru"} <= languages


def test_the_held_out_split_is_fixed_and_covers_every_class() -> None:
    rows = load_dataset()
    for category in TEXT_CATEGORIES:
        of_class = [row for row in rows if row.label is category]
        held_out = sum(row.split == "test" for row in of_class)
        assert 0.18 <= held_out / len(of_class) <= 0.32, category
    assert split_for("a new row") == split_for("a new row")


def test_hard_cases_are_present() -> None:
    rows = load_dataset()
    assert sum(len(row.text) <= 12 for row in rows) >= 20  # greetings, "ok cool"
    assert sum(len(row.text) >= 300 for row in rows) >= 10  # pasted documents, logs, code
    foreign_code = [r for r in rows if r.lang != "en" and r.label in (Category.CODE, Category.MATH)]
    assert len({r.lang for r in foreign_code}) >= 5
    assert any("Python snake" in row.text and row.label is Category.CHAT for row in rows)
    assert any(row.task is Category.REASONING and row.lang != "en" for row in rows)


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("not json", "line 1"),
        ('{"text": "x", "label": "poetry", "lang": "en", "split": "train"}', "poetry"),
        ('{"text": "x", "label": "vision", "lang": "en", "split": "train"}', "decided by rules"),
        ('{"text": "x", "label": "chat", "lang": "en", "split": "dev"}', "split"),
        ('{"text": "x", "label": "multilingual", "lang": "en", "split": "test"}', "non-English"),
        ('{"text": "x", "label": "chat", "lang": "fr", "split": "test"}', "labeled multilingual"),
        ('{"text": "", "label": "chat", "lang": "en", "split": "test"}', "non-empty"),
        ('{"text": "x", "label": "code", "lang": "en", "task": "chat", "split": "test"}', "task"),
    ],
)
def test_malformed_rows_are_rejected(line: str, message: str) -> None:
    with pytest.raises(DatasetError, match=message):
        parse_dataset([line])


def test_duplicates_are_rejected() -> None:
    line = '{"text": "hello", "label": "chat", "lang": "en", "split": "train"}'
    with pytest.raises(DatasetError, match="duplicate"):
        parse_dataset([line, line])


def test_the_shipped_weights_were_trained_on_this_dataset_and_lexicon() -> None:
    from aria.router.train import shipped_lexicon

    meta = load_classifier().meta
    assert meta["dataset_sha256"] == dataset_sha256(read_packaged("queries.jsonl"))
    assert meta["lexicon"] == shipped_lexicon()
    assert meta["train_rows"] == sum(row.split == "train" for row in load_dataset())


def test_a_fresh_fit_reproduces_the_shipped_weights() -> None:
    pytest.importorskip("sklearn")
    from aria.router.train import check_shipped

    assert check_shipped() == []
