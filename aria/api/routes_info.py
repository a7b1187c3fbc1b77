"""``GET /v1/models``, ``GET /health`` and ``GET /metrics``."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST

from aria import __version__
from aria.api.metrics import Metrics
from aria.node import Node
from aria.profiles import enabled_tiers

__all__ = ["router"]

router = APIRouter()


@router.get("/v1/models", tags=["models"])
async def list_models(request: Request) -> JSONResponse:
    """Installed models (tier, licence, whether the profile routes to them), plus ``auto``."""
    node: Node = request.app.state.node
    created = int(request.app.state.started)
    tiers = enabled_tiers(node.settings.node.profile, gpu_available=node.hardware.gpu_available)
    data: list[dict[str, Any]] = [
        {
            "id": "auto",
            "object": "model",
            "created": created,
            "owned_by": "aria",
            "description": "Let ARIA pick the model for each request (profile "
            f"{node.settings.node.profile}: {', '.join(t.value for t in tiers)}).",
        }
    ]
    for model in node.store.installed():
        entry = model.entry
        data.append(
            {
                "id": entry.id,
                "object": "model",
                "created": created,
                "owned_by": entry.family,
                "tier": entry.tier.value,
                "licence": entry.licence,
                "context_length": entry.context_length,
                "capabilities": sorted(c.value for c in entry.capabilities),
                "routable": entry.tier in tiers,
            }
        )
    return JSONResponse({"object": "list", "data": data})


@router.get("/health", tags=["operations"])
async def health(request: Request) -> JSONResponse:
    """Liveness plus what the node is running: backends, their states and queues, and
    how many requests each decodes together (``slots``, ``active``, their K/V cache).

    When API keys are required, a request without a valid key gets only
    ``{"status": "ok"}`` (load balancers need no more; pids and budgets are not theirs).
    """
    if request.app.state.require_keys and getattr(request.state, "api_key_id", None) is None:
        return JSONResponse({"status": "ok"})
    node: Node = request.app.state.node
    limits = node.dispatcher.limits
    backends = [
        {
            "model": view.model_id,
            "state": view.state,
            "detail": view.detail or None,
            "pid": view.pid,
            "queued": view.queued,
            "engine": view.engine,
            "threads": view.threads,
            "context_length": view.n_ctx,
            "slots": view.slots,
            "active": view.active,
            "kv_cache_bytes": view.kv_bytes,
        }
        for view in node.dispatcher.backends()
    ]
    return JSONResponse(
        {
            "status": "ok",
            "version": __version__,
            "profile": node.settings.node.profile,
            "gpu": node.hardware.gpu_available,
            "bitnet_server": str(node.bitnet_server) if node.bitnet_server else None,
            "memory_budget_bytes": limits.budget_bytes,
            "max_loaded": limits.max_loaded,
            "backends": backends,
        }
    )


@router.get("/metrics", tags=["operations"])
async def metrics(request: Request) -> Response:
    """Prometheus text format."""
    registry: Metrics = request.app.state.metrics
    return Response(registry.render(), media_type=CONTENT_TYPE_LATEST)
