"""What the parts of ``memory_eval.py`` share: the dataset, the clock, a node, filled stores."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import platformdirs

from aria.catalog import load_catalog, load_denylist
from aria.config import AriaPaths, AriaSettings
from aria.hardware import detect
from aria.memory import MemoryKind, MemoryService, MemoryStore, NodeEmbedder
from aria.node import Node
from aria.store import ModelStore

__all__ = [
    "CHAT",
    "DATA",
    "EMBEDDING",
    "NOW",
    "ROOT",
    "embed_all",
    "embedder",
    "fill_store",
    "load",
    "make_node",
    "moment",
]

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "benchmarks" / "data" / "memory"
NOW = datetime(2026, 12, 4, 15, 30).astimezone()
EMBEDDING = "all-MiniLM-L6-v2"
CHAT = "SmolLM2-135M-Instruct"


def load(name: str) -> list[dict[str, Any]]:
    with (DATA / name).open(encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def make_node(home: Path) -> tuple[Node, str | None]:
    """A node in a scratch home holding the user's installed embedding (and chat) model."""
    paths = AriaPaths(home)
    node = Node.create(paths, AriaSettings(), hardware=detect())
    user = ModelStore(
        AriaPaths(Path(platformdirs.user_data_dir("aria", "aria"))), load_catalog(), load_denylist()
    )
    if not user.is_installed(EMBEDDING):
        raise SystemExit(f"{EMBEDDING} is not installed: run `aria model ensure-default` first")
    node.store.import_file(user.path_of(EMBEDDING))
    chat = None
    if user.is_installed(CHAT):
        node.store.import_file(user.path_of(CHAT))
        chat = CHAT
    return node, chat


def embedder(node: Node) -> NodeEmbedder:
    return NodeEmbedder(node, EMBEDDING)


def moment(days_ago: int, hour: int) -> float:
    day = (NOW - timedelta(days=days_ago)).date()
    return datetime.combine(day, datetime.min.time()).astimezone().timestamp() + hour * 3600


async def embed_all(node: Node, texts: list[str], batch: int = 64) -> list[list[float]]:
    vectors: list[list[float]] = []
    for start in range(0, len(texts), batch):
        vectors += await embedder(node).embed(texts[start : start + batch])
    return vectors


async def fill_store(
    node: Node, path: Path, memories: list[dict[str, Any]]
) -> tuple[MemoryService, dict[str, str]]:
    """A store holding ``memories`` at their ages; returns its service and dataset id -> id."""
    store = MemoryStore(path)
    vectors = await embed_all(node, [m["text"] for m in memories])
    ids = {}
    for item, vector in zip(memories, vectors, strict=True):
        memory = store.add(
            MemoryKind(item["kind"]),
            item["text"],
            source="eval",
            now=moment(item["days_ago"], item["hour"]),
            vector=vector,
            role=item.get("role"),
            conversation=f"c-{item['days_ago']}",
        )
        ids[memory.id] = item["id"]
    store.set_meta("embedding_model", EMBEDDING)
    return MemoryService(store, embedder(node), clock=NOW.timestamp), ids
