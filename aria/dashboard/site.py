"""Serving the dashboard's files: ``/`` is the page, ``/ui/<file>`` its scripts and styles.

The files ship inside the package (``aria/dashboard/static``) and are read once, when
the app is built; nothing is fetched from anywhere else. Every answer carries a
Content-Security-Policy that allows this origin only: no inline script, no script,
style, font or image from another host, no framing. So even a rendering bug cannot
run a model's ``<script>`` or make the browser call out.

Responses are revalidated with an ETag (``Cache-Control: no-cache``): an upgraded ARIA
serves its new page at once.
"""

from __future__ import annotations

import hashlib
import mimetypes
from dataclasses import dataclass
from importlib import resources
from importlib.abc import Traversable
from typing import Final

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

__all__ = ["CONTENT_SECURITY_POLICY", "Site"]

CONTENT_SECURITY_POLICY: Final = "; ".join(
    (
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "connect-src 'self'",
        "manifest-src 'self'",
        "base-uri 'none'",
        "form-action 'none'",
        "frame-ancestors 'none'",
    )
)

_HEADERS: Final = {
    "content-security-policy": CONTENT_SECURITY_POLICY,
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "cache-control": "no-cache",
    "cross-origin-opener-policy": "same-origin",
    "cross-origin-resource-policy": "same-origin",
}

_TYPES: Final = {
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".html": "text/html; charset=utf-8",
    ".svg": "image/svg+xml",
}

PREFIX: Final = "/ui/"


@dataclass(frozen=True)
class _Asset:
    body: bytes
    media_type: str
    etag: str


class Site:
    """The dashboard's files, loaded from ``root`` (default: the packaged ``static``)."""

    def __init__(self, root: Traversable | None = None) -> None:
        root = root or resources.files("aria.dashboard").joinpath("static")
        self._assets: dict[str, _Asset] = {}
        self._load(root, "")
        if "index.html" not in self._assets:
            raise FileNotFoundError("the dashboard's index.html is missing from the package")

    def _load(self, folder: Traversable, prefix: str) -> None:
        for item in folder.iterdir():
            name = prefix + item.name
            if item.is_dir():
                self._load(item, name + "/")
            elif not item.name.startswith("."):
                body = item.read_bytes()
                suffix = "." + item.name.rpartition(".")[2]
                media = _TYPES.get(suffix) or mimetypes.guess_type(item.name)[0]
                etag = '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
                self._assets[name] = _Asset(body, media or "application/octet-stream", etag)

    @property
    def paths(self) -> frozenset[str]:
        """Every URL path the site answers (open without an API key: no secrets in them)."""
        return frozenset({"/", *(PREFIX + name for name in self._assets)})

    def routes(self) -> list[BaseRoute]:
        return [
            Route("/", self._index, methods=["GET", "HEAD"], include_in_schema=False),
            Route(
                PREFIX + "{name:path}", self._file, methods=["GET", "HEAD"], include_in_schema=False
            ),
        ]

    async def _index(self, request: Request) -> Response:
        return self._answer(request, self._assets["index.html"])

    async def _file(self, request: Request) -> Response:
        asset = self._assets.get(request.path_params["name"])
        if asset is None:
            return Response("not found", status_code=404, media_type="text/plain", headers=_HEADERS)
        return self._answer(request, asset)

    @staticmethod
    def _answer(request: Request, asset: _Asset) -> Response:
        headers = {**_HEADERS, "etag": asset.etag}
        if request.headers.get("if-none-match") == asset.etag:
            return Response(status_code=304, headers=headers)
        return Response(asset.body, media_type=asset.media_type, headers=headers)
