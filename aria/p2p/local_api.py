"""How the node process reaches this machine's own API to run a peer's request.

The node process has no dispatcher of its own: it forwards an admitted peer request
to the running ``aria api start`` over loopback and relays the SSE chunks unchanged,
so remote requests share the API's model workers, memory budget, routing, metrics
and chat formatting instead of a second copy of all of them. The API writes
``ARIA_HOME/api/endpoint.json`` (mode 0600: URL, pid, whether keys are required, the
TLS certificate when it serves HTTPS) when it starts and removes it when it stops.
When keys are required, the node uses its own API key ``aria-node-peers`` (created on
first need, secret kept 0600 in ``ARIA_HOME/node/api_key``). Over HTTPS the node trusts
exactly the API's own certificate (pinned; the loopback URL need not match its names).
"""

from __future__ import annotations

import contextlib
import json
import os
import ssl
from collections.abc import AsyncGenerator
from pathlib import Path
from typing import Any

import httpx
from pydantic import BaseModel, ConfigDict, ValidationError

from aria.config import AriaPaths
from aria.files import write_atomic

__all__ = [
    "ApiEndpoint",
    "EndpointReporter",
    "LocalApiError",
    "endpoint_file",
    "read_endpoint",
    "remove_endpoint",
    "stream_chat",
    "write_endpoint",
]

_KEY_NAME = "aria-node-peers"


class ApiEndpoint(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)
    url: str
    pid: int
    keys_required: bool = False
    tls_cert: str | None = None

    def verify(self) -> ssl.SSLContext | bool:
        """What httpx should trust: the API's own certificate when it serves HTTPS."""
        if self.tls_cert is None:
            return True
        context = ssl.create_default_context(cafile=self.tls_cert)
        context.check_hostname = False  # the pinned certificate, reached on loopback
        context.verify_flags |= ssl.VERIFY_X509_PARTIAL_CHAIN
        return context


class LocalApiError(Exception):
    """The local API refused or failed a forwarded request (``status`` 0: unreachable)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def endpoint_file(paths: AriaPaths) -> Path:
    return paths.api / "endpoint.json"


def write_endpoint(
    paths: AriaPaths, url: str, *, keys_required: bool, tls_cert: Path | None = None
) -> None:
    """Called by the API once it listens (``url`` as hypercorn bound it)."""
    url = url.replace("://0.0.0.0:", "://127.0.0.1:").replace("://[::]:", "://[::1]:")
    cert = str(tls_cert.resolve()) if tls_cert is not None else None
    info = ApiEndpoint(url=url, pid=os.getpid(), keys_required=keys_required, tls_cert=cert)
    write_atomic(endpoint_file(paths), info.model_dump_json())


def remove_endpoint(paths: AriaPaths) -> None:
    """Remove the file if it is this process's (a newer API may have replaced it)."""
    info = read_endpoint(paths)
    if info is not None and info.pid == os.getpid():
        with contextlib.suppress(FileNotFoundError):
            endpoint_file(paths).unlink()


def read_endpoint(paths: AriaPaths) -> ApiEndpoint | None:
    try:
        return ApiEndpoint.model_validate_json(endpoint_file(paths).read_text("utf-8"))
    except (OSError, ValidationError):
        return None


def _node_api_key(paths: AriaPaths) -> str:
    """The node's own API key secret (created in the API's key store on first need)."""
    from aria.apikeys import KeyStore

    secret_file = paths.node / "api_key"
    store = KeyStore(paths.api)
    with contextlib.suppress(OSError):
        secret = secret_file.read_text("utf-8").strip()
        if secret and store.verify(secret):
            return secret
    with contextlib.suppress(Exception):
        store.revoke(_KEY_NAME)
    _, secret = store.create(_KEY_NAME)
    write_atomic(secret_file, secret)
    return secret


async def stream_chat(paths: AriaPaths, body: dict[str, Any]) -> AsyncGenerator[str, None]:
    """POST ``body`` to the local API's chat completions; yield each SSE ``data`` payload
    (or, for a non-streamed request, the one JSON response).

    Closing the generator closes the HTTP connection, which makes the API cancel the
    generation in its worker.

    Raises:
        LocalApiError: no API runs here, or it answered with an error status.
    """
    endpoint = read_endpoint(paths)
    if endpoint is None:
        raise LocalApiError(0, "no ARIA API runs on the serving node")
    headers = {}
    if endpoint.keys_required:
        headers["authorization"] = f"Bearer {_node_api_key(paths)}"
    timeout = httpx.Timeout(10.0, read=300.0)
    try:
        verify = endpoint.verify()
    except (OSError, ssl.SSLError) as exc:
        raise LocalApiError(0, f"cannot read the local API's TLS certificate: {exc}") from None
    try:
        async with (
            httpx.AsyncClient(base_url=endpoint.url, timeout=timeout, verify=verify) as client,
            client.stream("POST", "/v1/chat/completions", json=body, headers=headers) as reply,
        ):
            if reply.status_code != 200:
                raise LocalApiError(reply.status_code, _error_message(await reply.aread()))
            if not reply.headers.get("content-type", "").startswith("text/event-stream"):
                yield (await reply.aread()).decode("utf-8", errors="replace")
                return
            async for line in reply.aiter_lines():
                if line.startswith("data:"):
                    yield line[5:].strip()
    except httpx.HTTPError as exc:
        raise LocalApiError(0, f"the serving node's API failed: {exc}") from None


def _error_message(raw: bytes) -> str:
    try:
        return str(json.loads(raw)["error"]["message"])[:500]
    except (ValueError, KeyError, TypeError):
        return "the serving node's API refused the request"


class EndpointReporter:
    """A trio ``task_status`` for hypercorn's ``serve``: when the API has bound, write
    ``endpoint.json`` for the node, then pass the URLs on."""

    def __init__(
        self,
        paths: AriaPaths,
        keys_required: bool,
        task_status: Any,
        *,
        tls_cert: Path | None = None,
    ) -> None:
        self._paths, self._keys_required, self._inner = paths, keys_required, task_status
        self._tls_cert = tls_cert

    def started(self, urls: list[str] | None = None) -> None:
        if urls:
            write_endpoint(
                self._paths, urls[0], keys_required=self._keys_required, tls_cert=self._tls_cert
            )
        self._inner.started(urls)
