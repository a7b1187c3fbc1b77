"""The shipped classifier: clear cases per class, the language policy, the weights file."""

from __future__ import annotations

import numpy as np
import pytest

from aria.errors import ConfigError
from aria.router import Category, QueryClassifier, classify_query
from aria.router.features import HASH_DIM, Lexicon, featurize

# Clear examples written for this test (not in the dataset), a few per class.
CLEAR = [
    ("Hey! Good morning, how are you?", Category.CHAT),
    ("Write a short poem about the sea at night.", Category.CHAT),
    ("Can you recommend a good book for a long flight?", Category.CHAT),
    ("Why does this Python function return None instead of the list?", Category.CODE),
    ("How do I undo a git merge that I already pushed?", Category.CODE),
    ("def fib(n):\n    return fib(n-1) + fib(n-2)\n\nwhy is this so slow?", Category.CODE),
    ("What is 48 times 12?", Category.MATH),
    ("Solve 5x - 3 = 2x + 9 for x.", Category.MATH),
    ("What is the derivative of x^2 * ln(x)?", Category.MATH),
    (
        "All bloggers are writers and some writers are poets. Must some bloggers be poets? "
        "Explain the logic.",
        Category.REASONING,
    ),
    ("Weigh the pros and cons of moving abroad for a job, step by step.", Category.REASONING),
    ("Bonjour, tu peux me conseiller un bon restaurant à Lyon ?", Category.MULTILINGUAL),
    ("Wie wird das Wetter morgen in Hamburg?", Category.MULTILINGUAL),
    ("¿Cuál es tu película favorita?", Category.MULTILINGUAL),
    ("東京でおすすめのラーメン屋はどこですか？", Category.MULTILINGUAL),
    ("Расскажи мне сказку про кота.", Category.MULTILINGUAL),
]


@pytest.mark.parametrize(("text", "expected"), CLEAR)
def test_clear_examples(classifier: QueryClassifier, text: str, expected: Category) -> None:
    result = classify_query(text, classifier)
    assert result.category is expected, dict(result.scores)
    assert result.confidence == max(result.scores.values())


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Comment trier une liste de dictionnaires en Python ?", Category.CODE),
        ("Wie berechne ich die Ableitung von x hoch 3?", Category.MATH),
        ("Comment s'est passée ta journée ?", Category.MULTILINGUAL),
    ],
)
def test_the_task_wins_for_code_and_math_in_any_language(
    classifier: QueryClassifier, text: str, expected: Category
) -> None:
    assert classify_query(text, classifier).category is expected


def test_scores_are_a_distribution_over_the_text_categories(classifier: QueryClassifier) -> None:
    for text in ("", "   ", "?", "a" * 50_000, "🙂🙂🙂", "\x00\x01 binary-ish"):
        result = classify_query(text, classifier)
        assert set(result.scores) == {
            Category.CHAT,
            Category.CODE,
            Category.MATH,
            Category.REASONING,
            Category.MULTILINGUAL,
        }
        assert sum(result.scores.values()) == pytest.approx(1.0)
        assert 0.0 <= result.confidence <= 1.0


def test_long_texts_are_clipped_so_the_cost_stays_bounded() -> None:
    lexicon = Lexicon.from_mapping({})
    head = "word " * 2000
    slots_a, _ = featurize(head + "tail", lexicon)
    slots_b, _ = featurize(head * 10 + "tail", lexicon)
    assert np.array_equal(slots_a, slots_b)


def test_features_are_deterministic_and_in_range() -> None:
    lexicon = Lexicon.from_mapping({"code": ["python", "stack trace", "函数"]})
    slots, values = featurize("Python 函数 stack trace", lexicon)
    again_slots, again_values = featurize("Python 函数 stack trace", lexicon)
    assert np.array_equal(slots, again_slots) and np.array_equal(values, again_values)
    assert slots.min() >= 0 and slots.max() < HASH_DIM
    assert list(slots) == sorted(set(slots.tolist()))
    counts = lexicon.counts(["python", "stack", "trace"], "python stack trace 函数")
    assert counts["code"] == 3


def test_the_weights_file_round_trips(classifier: QueryClassifier) -> None:
    again = QueryClassifier.from_npz(classifier.to_npz())
    assert np.array_equal(again.weights, classifier.weights)
    assert np.array_equal(again.bias, classifier.bias)
    assert dict(again.meta) == dict(classifier.meta)
    text = "What is 17 times 23?"
    assert again.classify(text) == classifier.classify(text)


def test_unreadable_or_foreign_weights_are_config_errors(classifier: QueryClassifier) -> None:
    with pytest.raises(ConfigError, match="unreadable"):
        QueryClassifier.from_npz(b"not a zip file")
    other = QueryClassifier(
        classifier.weights, classifier.bias, classifier.lexicon, {"feature_version": 0}
    )
    with pytest.raises(ConfigError, match="retrain"):
        QueryClassifier.from_npz(other.to_npz())
    with pytest.raises(ConfigError, match="shape"):
        QueryClassifier(classifier.weights[:10], classifier.bias, classifier.lexicon)
