"""Cross-site request forgery stops at the content type.

A web page on another site can make the user's browser send a "simple" request (an
HTML form: ``text/plain``, ``application/x-www-form-urlencoded`` or
``multipart/form-data``) without asking this server first. Every state-changing
management request must declare ``Content-Type: application/json``, which a browser
sends cross-site only after a CORS preflight this API refuses (CORS is closed unless
the operator lists origins). The Origin check (:class:`aria.api.guards.OriginCheck`)
refuses the rest; API keys travel in a header, never in a cookie, so there is no
ambient credential to ride on.
"""

from __future__ import annotations

from fastapi import Request

from aria.errors import UnsupportedMediaType

__all__ = ["SAFE_METHODS", "json_writes"]

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


async def json_writes(request: Request) -> None:
    """FastAPI dependency: refuse a state-changing request that is not declared JSON.

    Raises:
        UnsupportedMediaType: a POST/PUT/PATCH/DELETE without a JSON content type.
    """
    if request.method in SAFE_METHODS:
        return
    kind = request.headers.get("content-type", "").partition(";")[0].strip().casefold()
    if kind != "application/json":
        raise UnsupportedMediaType(
            "requests that change this node must be sent as JSON (Content-Type: application/json)"
        )
