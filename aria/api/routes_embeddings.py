"""``POST /v1/embeddings``: pooled, normalized vectors from a GGUF model."""

from __future__ import annotations

import base64
import struct

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from aria.api.disconnect import client_gone, unless_disconnected
from aria.api.metrics import Metrics
from aria.api.routes_generation import ERROR_RESPONSES
from aria.api.schemas import EmbeddingRequest
from aria.errors import InvalidRequest
from aria.node import Node

__all__ = ["router"]

router = APIRouter(tags=["inference"])


def _encode(vector: list[float], encoding: str) -> list[float] | str:
    if encoding == "float":
        return vector
    # OpenAI's base64 format: little-endian float32 (the official SDK asks for it).
    return base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode("ascii")


@router.post("/v1/embeddings", responses=ERROR_RESPONSES)
async def embeddings(body: EmbeddingRequest, request: Request) -> Response:
    """Embed one text or a batch (mean pooling unless the model defines its own); a
    client that disconnects stops the batch between two chunks."""
    node: Node = request.app.state.node
    metrics: Metrics = request.app.state.metrics
    embedded = await unless_disconnected(
        request.receive, lambda: node.embed(body.texts(), body.model)
    )
    if embedded is None:
        return client_gone()
    model_id, result = embedded
    width = len(result.vectors[0]) if result.vectors else 0
    if body.dimensions is not None and body.dimensions != width:
        raise InvalidRequest(
            f"model {model_id} produces {width}-dimensional embeddings; "
            f"dimensions={body.dimensions} is not supported",
            param="dimensions",
        )
    metrics.tokens_in.labels(model_id).inc(result.prompt_tokens)
    data = [
        {"object": "embedding", "index": i, "embedding": _encode(v, body.encoding_format)}
        for i, v in enumerate(result.vectors)
    ]
    usage = {"prompt_tokens": result.prompt_tokens, "total_tokens": result.prompt_tokens}
    return JSONResponse({"object": "list", "data": data, "model": model_id, "usage": usage})
