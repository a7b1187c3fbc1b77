"""``create_app(node)``: the OpenAI-compatible HTTP API of one node.

All state lives on ``app.state`` (the node, its metrics, the key store, the users'
memories); nothing is global, so tests run several apps side by side. While the app runs,
its lifespan supervises the node's backends and fires the memories' time reminders on
time. Middleware, outermost first: CORS (only when origins are configured), request
counting, API-key check (when the server is reachable from other machines), the body-size
limit.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
from fastapi import FastAPI
from starlette.middleware.cors import CORSMiddleware

from aria import __version__
from aria.api import routes_embeddings, routes_generation, routes_info, routes_memory
from aria.api.errors import install_error_handlers
from aria.api.guards import BearerAuth, BodyLimit
from aria.api.keys import KeyStore
from aria.api.metrics import CountRequests, Metrics
from aria.memory import MemoryHub, NodeModels, embedder_for, known_users, watch_reminders
from aria.node import Node

__all__ = ["OPEN_PATHS", "create_app", "openapi_document"]

# Reachable without a key even when keys are required (load balancers probe it).
OPEN_PATHS = frozenset({"/health"})

_DESCRIPTION = (
    "OpenAI-compatible API of an ARIA node: local models served by supervised "
    "llama.cpp worker processes. Errors use OpenAI's error object."
)


def _base_app(lifespan: Any = None) -> FastAPI:
    app = FastAPI(
        title="ARIA",
        version=__version__,
        description=_DESCRIPTION,
        lifespan=lifespan,
        redoc_url=None,
    )
    app.include_router(routes_generation.router)
    app.include_router(routes_embeddings.router)
    app.include_router(routes_info.router)
    app.include_router(routes_memory.router)
    return app


def openapi_document() -> dict[str, Any]:
    """The API's OpenAPI schema (published as ``docs/openapi.json``)."""
    return _base_app().openapi()


def create_app(node: Node, *, require_keys: bool = False) -> FastAPI:
    """The ASGI app serving ``node``; its lifespan supervises the node's backends."""

    memory = MemoryHub(node.paths, embedder_for(node), NodeModels(node))

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        async with node.running(), anyio.create_task_group() as tasks:
            if node.settings.memory.enabled:
                users = lambda: known_users(node.paths)  # noqa: E731
                tasks.start_soon(watch_reminders, memory, users, None)
            try:
                yield
            finally:
                tasks.cancel_scope.cancel()
                memory.close()

    app = _base_app(lifespan)
    metrics = Metrics(node.dispatcher)
    keys = KeyStore(node.paths.api)
    app.state.node = node
    app.state.metrics = metrics
    app.state.keys = keys
    app.state.memory = memory
    app.state.started = time.time()
    install_error_handlers(app)
    settings = node.settings.api
    app.add_middleware(BodyLimit, max_bytes=settings.max_body_bytes, metrics=metrics)
    if require_keys:
        app.add_middleware(BearerAuth, keys=keys, open_paths=OPEN_PATHS, metrics=metrics)
    app.add_middleware(CountRequests, metrics=metrics)
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST", "DELETE", "OPTIONS"],
            allow_headers=["authorization", "content-type"],
            expose_headers=[
                "x-aria-route",
                "x-aria-notice",
                "x-aria-split",
                "x-aria-served-by",
                "x-aria-memory",
                "x-aria-reminders",
            ],  # fmt: skip
        )
    return app
