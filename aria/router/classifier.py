"""The learned half of the classifier: two linear heads over the hashed features (pure).

One head predicts the *task* (chat, code, math, reasoning), the other whether the query
is *not English*. They combine into the five text categories by ARIA's language policy:

- code and math keep their category in any language (the task decides the model: coder
  and maths models read French or Chinese questions about code well enough);
- chat and reasoning in another language than English become ``multilingual`` (the
  language decides: small English-centric models answer those poorly).

The weights are trained offline by ``python -m aria.router.train`` (scikit-learn) and
shipped as ``data/classifier.npz``; scoring here is one sparse dot product with numpy.
"""

from __future__ import annotations

import io
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from aria.errors import ConfigError
from aria.router.categories import Category
from aria.router.features import FEATURE_VERSION, HASH_DIM, Lexicon, featurize

__all__ = ["TASK_CATEGORIES", "Classification", "QueryClassifier", "classify_query"]

# The task head's columns, in order; the language head is the column after them.
TASK_CATEGORIES: Final = (Category.CHAT, Category.CODE, Category.MATH, Category.REASONING)
_COLUMNS: Final = len(TASK_CATEGORIES) + 1


@dataclass(frozen=True)
class Classification:
    """The text category, its probability, and every text category's probability."""

    category: Category
    confidence: float
    scores: Mapping[Category, float]


@dataclass(frozen=True, eq=False)
class QueryClassifier:
    """Trained weights plus what they were trained with (``meta``: dataset hash, lexicon...)."""

    weights: npt.NDArray[np.float32]
    bias: npt.NDArray[np.float32]
    lexicon: Lexicon
    meta: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.weights.shape != (HASH_DIM, _COLUMNS) or self.bias.shape != (_COLUMNS,):
            raise ConfigError(
                f"classifier weights have shape {self.weights.shape}/{self.bias.shape}, "
                f"expected ({HASH_DIM}, {_COLUMNS})/({_COLUMNS},)"
            )

    @classmethod
    def from_arrays(
        cls,
        rows: npt.NDArray[np.int64],
        values: npt.NDArray[np.float32],
        bias: npt.NDArray[np.float32],
        meta: Mapping[str, Any],
    ) -> QueryClassifier:
        """Build from the non-zero weight rows (how the file stores them) and metadata."""
        weights = np.zeros((HASH_DIM, _COLUMNS), dtype=np.float32)
        weights[rows] = values
        lexicon = Lexicon.from_mapping(meta.get("lexicon", {}))
        return cls(weights, bias.astype(np.float32), lexicon, MappingProxyType(dict(meta)))

    @classmethod
    def from_npz(cls, data: bytes) -> QueryClassifier:
        """Parse a weights file's bytes.

        Raises:
            ConfigError: not a weights file, or one made for another feature version.
        """
        try:
            with np.load(io.BytesIO(data), allow_pickle=False) as archive:
                meta = json.loads(str(archive["meta"]))
                rows, values, bias = archive["rows"], archive["values"], archive["bias"]
        except (OSError, ValueError, KeyError) as exc:
            raise ConfigError(f"the router's classifier weights are unreadable: {exc}") from exc
        if meta.get("feature_version") != FEATURE_VERSION or meta.get("hash_dim") != HASH_DIM:
            raise ConfigError(
                "the router's classifier weights were trained for other features; "
                "retrain them with `python -m aria.router.train`"
            )
        return cls.from_arrays(rows.astype(np.int64), values, bias, meta)

    def to_npz(self) -> bytes:
        """Serialise the non-zero rows (most hashed slots never occur in training)."""
        rows = np.flatnonzero(np.any(self.weights != 0, axis=1))
        buffer = io.BytesIO()
        np.savez_compressed(
            buffer,
            rows=rows.astype(np.int32),
            values=self.weights[rows],
            bias=self.bias,
            meta=np.array(json.dumps(dict(self.meta), sort_keys=True, ensure_ascii=False)),
        )
        return buffer.getvalue()

    def logits(self, text: str) -> npt.NDArray[np.float64]:
        """Raw scores: the task logits then the not-English logit."""
        slots, values = featurize(text, self.lexicon)
        return values @ self.weights[slots].astype(np.float64) + self.bias

    def classify(self, text: str) -> Classification:
        """The text category of ``text`` under ARIA's language policy (see module doc)."""
        z = self.logits(text)
        task = _softmax(z[: len(TASK_CATEGORIES)])
        foreign = 1.0 / (1.0 + math.exp(-float(np.clip(z[-1], -30.0, 30.0))))
        p = dict(zip(TASK_CATEGORIES, (float(x) for x in task), strict=True))
        scores = {
            Category.CHAT: (1.0 - foreign) * p[Category.CHAT],
            Category.CODE: p[Category.CODE],
            Category.MATH: p[Category.MATH],
            Category.REASONING: (1.0 - foreign) * p[Category.REASONING],
            Category.MULTILINGUAL: foreign * (p[Category.CHAT] + p[Category.REASONING]),
        }
        best = max(scores, key=lambda category: scores[category])
        return Classification(best, scores[best], MappingProxyType(scores))


def classify_query(text: str, classifier: QueryClassifier) -> Classification:
    """The text category of one query (the structural rules live in ``route``)."""
    return classifier.classify(text)


def _softmax(z: Sequence[float] | npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    shifted = np.asarray(z, dtype=np.float64) - np.max(z)
    exp = np.exp(shifted)
    probabilities: npt.NDArray[np.float64] = exp / exp.sum()
    return probabilities
