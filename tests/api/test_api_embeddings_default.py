"""``/v1/embeddings`` uses the default embedding model (all-MiniLM-L6-v2) unless a request
names another; the embedding-only model refuses chat. Slow: loads the real model."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.api.conftest import Server, make_node, running

pytestmark = pytest.mark.slow

EMBEDDING = "all-MiniLM-L6-v2"


@pytest.fixture(scope="module")
def server(
    tmp_path_factory: pytest.TempPathFactory, model_files: dict[str, Path], embedding_file: Path
) -> Iterator[Server]:
    node = make_node(tmp_path_factory.mktemp("embeddings"), {"tiny": model_files["tiny"]})
    node.store.import_file(embedding_file)
    with running(node) as live:
        yield live


def test_embeddings_use_the_default_embedding_model_unless_named(server: Server) -> None:
    http = server.http()
    default = http.post("/v1/embeddings", json={"input": ["I live in Lyon", "J'habite à Lyon"]})
    assert default.status_code == 200 and default.json()["model"] == EMBEDDING
    assert [len(d["embedding"]) for d in default.json()["data"]] == [384, 384]
    named = http.post("/v1/embeddings", json={"input": "I live in Lyon", "model": "tiny"})
    assert named.json()["model"] == "tiny" and len(named.json()["data"][0]["embedding"]) != 384
    chat = http.post(
        "/v1/chat/completions",
        json={"model": EMBEDDING, "messages": [{"role": "user", "content": "hi"}]},
    )
    assert chat.status_code == 400 and "only produces embeddings" in chat.json()["error"]["message"]
