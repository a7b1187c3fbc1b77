"""The OpenAI-compatible HTTP API: ``create_app(node)`` and ``serve(...)``.

* ``app``        -- the app factory and the OpenAPI document;
* ``schemas``/``convert`` -- request bodies and their translation into jobs;
* ``payloads``/``streaming`` -- responses, SSE chunks, the streaming response;
* ``routes_*``   -- one module per endpoint group;
* ``errors``     -- OpenAI-style error rendering; ``guards`` -- connection cap, Host and
  Origin checks, API keys and per-key limit, body size and deadline;
* ``disconnect`` -- cancelling a request's work when its client leaves;
* ``metrics``    -- Prometheus (the key store itself is :mod:`aria.apikeys`);
* ``server``     -- hypercorn on trio (TLS off loopback); ``background`` -- the same in a
  thread (tests, benchmarks).
"""

from aria.api.app import OPEN_PATHS, create_app, openapi_document
from aria.api.background import serve_in_thread
from aria.api.server import ServerConfig, is_loopback, serve

__all__ = [
    "OPEN_PATHS",
    "ServerConfig",
    "create_app",
    "is_loopback",
    "openapi_document",
    "serve",
    "serve_in_thread",
]
