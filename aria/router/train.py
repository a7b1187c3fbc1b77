"""Train the router's classifier from the shipped dataset and write ``data/classifier.npz``.

    python -m aria.router.train            # retrain and overwrite the shipped weights
    python -m aria.router.train --check    # exit 1 if the shipped weights are stale
    python -m aria.router.train --cv       # 5-fold cross-validation over C on the train split

A development tool: it needs scikit-learn (the ``dev`` extra); ARIA itself only reads
the weights with numpy. Training uses the ``train`` split alone, with fixed
hyperparameters, and is deterministic, so the shipped file can be checked against a
fresh fit. The weights record the dataset's sha256 and embed the lexicon they used.
"""

from __future__ import annotations

import argparse
import sys
import tomllib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from aria.router.categories import Category
from aria.router.classifier import TASK_CATEGORIES, QueryClassifier
from aria.router.dataset import LabeledQuery, dataset_sha256
from aria.router.features import FEATURE_VERSION, HASH_DIM, Lexicon, featurize
from aria.router.loader import load_classifier, load_dataset, read_packaged

__all__ = ["DEFAULT_C", "check_shipped", "feature_matrix", "main", "shipped_lexicon", "train"]

# Inverse regularisation strength, chosen by `--cv` on the train split (docs/router.md).
DEFAULT_C: Final = 100.0
_MAX_ITER: Final = 5000
_WEIGHTS_PATH: Final = Path(__file__).with_name("data") / "classifier.npz"


def shipped_lexicon() -> dict[str, list[str]]:
    """``data/lexicon.toml`` as family -> words."""
    raw = tomllib.loads(read_packaged("lexicon.toml").decode("utf-8"))
    for family, words in raw.items():
        if not isinstance(words, list) or not all(isinstance(w, str) for w in words):
            raise ValueError(f"lexicon.toml: {family} must be a list of strings")
    return {family: list(words) for family, words in raw.items()}


def feature_matrix(texts: Sequence[str], lexicon: Lexicon) -> Any:
    """The CSR matrix of ``texts`` (rows) over the hashed feature space."""
    from scipy.sparse import csr_matrix

    indices: list[npt.NDArray[np.int64]] = []
    values: list[npt.NDArray[np.float64]] = []
    pointers = [0]
    for text in texts:
        slots, vals = featurize(text, lexicon)
        indices.append(slots)
        values.append(vals)
        pointers.append(pointers[-1] + len(slots))
    return csr_matrix(
        (np.concatenate(values), np.concatenate(indices), np.array(pointers)),
        shape=(len(texts), HASH_DIM),
    )


def train(
    queries: Sequence[LabeledQuery],
    lexicon: Mapping[str, list[str]],
    *,
    dataset_hash: str,
    c: float = DEFAULT_C,
) -> QueryClassifier:
    """Fit the task head and the language head on ``queries`` (all of them: pass the
    train split)."""
    import sklearn
    from sklearn.linear_model import LogisticRegression

    matrix = feature_matrix([q.text for q in queries], Lexicon.from_mapping(lexicon))
    task_head = LogisticRegression(C=c, solver="newton-cg", max_iter=_MAX_ITER)
    task_head.fit(matrix, [q.task.value for q in queries])
    language_head = LogisticRegression(C=c, solver="newton-cg", max_iter=_MAX_ITER)
    language_head.fit(matrix, [q.foreign for q in queries])

    weights = np.zeros((HASH_DIM, len(TASK_CATEGORIES) + 1), dtype=np.float32)
    bias = np.zeros(len(TASK_CATEGORIES) + 1, dtype=np.float32)
    classes = [Category(name) for name in task_head.classes_]
    for column, category in enumerate(TASK_CATEGORIES):
        row = classes.index(category)
        weights[:, column] = task_head.coef_[row]
        bias[column] = task_head.intercept_[row]
    weights[:, -1] = language_head.coef_[0]
    bias[-1] = language_head.intercept_[0]
    meta = {
        "feature_version": FEATURE_VERSION,
        "hash_dim": HASH_DIM,
        "c": c,
        "dataset_sha256": dataset_hash,
        "train_rows": len(queries),
        "lexicon": dict(lexicon),
        "sklearn": sklearn.__version__,
    }
    return QueryClassifier(weights, bias, Lexicon.from_mapping(lexicon), meta)


def train_shipped(c: float = DEFAULT_C) -> QueryClassifier:
    """A fresh fit on the shipped dataset's train split."""
    queries = [q for q in load_dataset() if q.split == "train"]
    digest = dataset_sha256(read_packaged("queries.jsonl"))
    return train(queries, shipped_lexicon(), dataset_hash=digest, c=c)


def check_shipped() -> list[str]:
    """Why the shipped weights do not match the shipped data (empty when they do)."""
    shipped = load_classifier()
    problems = []
    if shipped.meta.get("dataset_sha256") != dataset_sha256(read_packaged("queries.jsonl")):
        problems.append("the dataset changed since the weights were trained")
    if shipped.meta.get("lexicon") != shipped_lexicon():
        problems.append("the lexicon changed since the weights were trained")
    fresh = train_shipped(float(shipped.meta.get("c", DEFAULT_C)))
    if not np.allclose(fresh.weights, shipped.weights, atol=1e-4) or not np.allclose(
        fresh.bias, shipped.bias, atol=1e-4
    ):
        problems.append("a fresh fit gives different weights")
    return problems


def _cross_validate(grid: Sequence[float]) -> None:
    from sklearn.metrics import f1_score
    from sklearn.model_selection import StratifiedKFold

    queries = [q for q in load_dataset() if q.split == "train"]
    labels = np.array([q.label.value for q in queries])
    folds = StratifiedKFold(5, shuffle=True, random_state=0).split(np.zeros(len(labels)), labels)
    splits = list(folds)
    for c in grid:
        predicted = np.empty(len(queries), dtype=object)
        for fit_rows, held_rows in splits:
            model = train([queries[i] for i in fit_rows], shipped_lexicon(), dataset_hash="", c=c)
            for i in held_rows:
                predicted[i] = model.classify(queries[i].text).category.value
        score = f1_score(labels, predicted.astype(str), average="macro")
        print(f"C={c:g}: 5-fold macro-F1 {score:.4f}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m aria.router.train", description=__doc__)
    parser.add_argument("--check", action="store_true", help="verify the shipped weights")
    parser.add_argument("--cv", action="store_true", help="cross-validate C on the train split")
    args = parser.parse_args(argv)
    if args.cv:
        _cross_validate((3.0, 10.0, 30.0, 100.0, 300.0))
        return 0
    if args.check:
        problems = check_shipped()
        for problem in problems:
            print(f"stale classifier weights: {problem}", file=sys.stderr)
        print(
            "run: python -m aria.router.train" if problems else "classifier weights are up to date"
        )
        return 1 if problems else 0
    model = train_shipped()
    _WEIGHTS_PATH.write_bytes(model.to_npz())
    size = _WEIGHTS_PATH.stat().st_size
    print(f"wrote {_WEIGHTS_PATH} ({size} bytes, trained on {model.meta['train_rows']} rows)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
