"""``create_app(node)``: the OpenAI-compatible HTTP API of one node.

All state lives on ``app.state`` (the node, its metrics, the key store, the users'
memories, the dashboard's event hub and jobs); nothing is global, so tests run several apps
side by side. While the app runs, its lifespan supervises the node's backends, fires the
memories' time reminders on time and runs the dashboard's downloads and benchmarks. The
dashboard (:mod:`aria.dashboard`) is served at ``/``, its management API under ``/api``
(:mod:`aria.api.manage`). Middleware, outermost first: request counting, the cap on requests
in progress, the Host check (keyless APIs only), the Origin check, CORS (only when origins are
configured), the API-key check and per-key limit (when keys are required), the body limit and
deadline (see :mod:`aria.api.guards`).
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
from aria.api import manage, routes_embeddings, routes_generation, routes_info, routes_memory
from aria.api.errors import install_error_handlers
from aria.api.guards import (
    BearerAuth,
    BodyLimit,
    ConcurrencyLimit,
    HostCheck,
    OriginCheck,
    PerKeyLimit,
)
from aria.api.metrics import CountRequests, Metrics
from aria.apikeys import KeyStore
from aria.dashboard import Site
from aria.errors import ConfigError
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
    app.include_router(manage.router)
    return app


def openapi_document() -> dict[str, Any]:
    """The API's OpenAPI schema (published as ``docs/openapi.json``)."""
    return _base_app().openapi()


def create_app(node: Node, *, require_keys: bool = False, host: str = "127.0.0.1") -> FastAPI:
    """The ASGI app serving ``node`` on ``host``; its lifespan supervises the node's backends.

    Raises:
        ConfigError: ``*`` in ``api.cors_origins`` while keys are not required (any web
            page could then drive the API with the user's browser).
    """
    settings = node.settings.api
    if "*" in settings.cors_origins and not require_keys:
        raise ConfigError(
            'api.cors_origins = ["*"] lets any web page use this API, which needs no key: '
            "list the origins you trust, or require API keys"
        )

    memory = MemoryHub(node.paths, embedder_for(node), NodeModels(node))

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with node.running(), manage.services(app), anyio.create_task_group() as tasks:
            if node.settings.memory.enabled:
                users = lambda: known_users(node.paths)  # noqa: E731
                tasks.start_soon(watch_reminders, memory, users, None)
            try:
                yield
            finally:
                tasks.cancel_scope.cancel()
                memory.close()

    app = _base_app(lifespan)
    site = Site()
    app.router.routes.extend(site.routes())  # the dashboard at / (docs/dashboard.md)
    manage.install(app, node)
    metrics = Metrics(node.dispatcher)
    keys = KeyStore(node.paths.api)
    app.state.node = node
    app.state.metrics = metrics
    app.state.keys = keys
    app.state.require_keys = require_keys
    app.state.memory = memory
    app.state.started = time.time()
    install_error_handlers(app)
    # add_middleware puts each one outside the previous: innermost first.
    app.add_middleware(
        BodyLimit,
        max_bytes=settings.max_body_bytes,
        timeout_s=settings.body_timeout_s,
        metrics=metrics,
    )
    if require_keys:
        if settings.max_requests_per_key is not None:
            app.add_middleware(PerKeyLimit, limit=settings.max_requests_per_key, metrics=metrics)
        open_paths = OPEN_PATHS | site.paths  # the page itself asks for the key
        app.add_middleware(BearerAuth, keys=keys, open_paths=open_paths, metrics=metrics)
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
                "x-aria-receipt",
                "x-aria-memory",
                "x-aria-reminders",
            ],  # fmt: skip
        )
    app.add_middleware(OriginCheck, allowed=settings.cors_origins, metrics=metrics)
    if not require_keys:
        names = frozenset({host, settings.host, *settings.allowed_hosts})
        app.add_middleware(HostCheck, allowed=names, metrics=metrics)
    app.add_middleware(ConcurrencyLimit, limit=settings.max_connections, metrics=metrics)
    app.add_middleware(CountRequests, metrics=metrics)
    return app
