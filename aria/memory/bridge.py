"""The node seen from the memory: the embedding model and the model store.

The memory embeds with the catalog's default embedding model (all-MiniLM-L6-v2) through
the node's dispatcher, so the model runs in its own worker process like every other one.
It is always that model, never a fallback: vectors from two models cannot be compared.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from aria.errors import ModelNotFound

if TYPE_CHECKING:
    from aria.node import Node

__all__ = ["NodeEmbedder", "NodeModels", "embedder_for"]


class NodeEmbedder:
    """Embeddings from one model served by the node."""

    def __init__(self, node: Node, model_id: str) -> None:
        self._node = node
        self._model_id = model_id

    @property
    def model_id(self) -> str:
        return self._model_id

    async def embed(self, texts: list[str]) -> list[list[float]]:
        _, result = await self._node.embed(texts, self._model_id)
        return result.vectors


class NodeModels:
    """Model reminders' view of the node: which ids exist, which are installed."""

    def __init__(self, node: Node) -> None:
        self._node = node

    def resolve(self, name: str) -> str | None:
        try:
            return self._node.catalog.get(name).id
        except ModelNotFound:
            wanted = name.casefold()
            installed = (m.model_id for m in self._node.store.installed())
            return next((m for m in installed if m.casefold() == wanted), None)

    def installed(self, model_id: str) -> bool:
        return self._node.store.is_installed(model_id)


def embedder_for(node: Node) -> NodeEmbedder | None:
    """The node's default embedding model, if it is installed (or installable offline)."""
    entry = node.catalog.default_embedding
    if entry is None or not node.embedding_available(entry.id):
        return None
    return NodeEmbedder(node, entry.id)
