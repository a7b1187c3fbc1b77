"""How the node process reaches this machine's own API to run a peer's request.

The node process has no dispatcher of its own: it forwards an admitted peer request
to the running ``aria api start`` over loopback and relays the SSE chunks unchanged,
so remote requests share the API's model workers, memory budget, placement decision,
metrics and chat formatting instead of a second copy of all of them. A forwarded
request says ``x-aria-placement: local-only``: it runs on this machine's own models,
never on yet another peer. An error status comes back as the API's error itself
(``aria.errors.from_wire`` over the OpenAI error body and the status). The API writes
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
from collections.abc import AsyncGenerator, Callable, Mapping
from pathlib import Path
from typing import Any

import httpx
from pydantic import BaseModel, ConfigDict, ValidationError

from aria.config import AriaPaths
from aria.errors import AriaError, BackendUnavailable, RequestError, from_wire
from aria.files import write_atomic

__all__ = [
    "ApiEndpoint",
    "EndpointReporter",
    "api_busy",
    "endpoint_file",
    "forward",
    "read_endpoint",
    "relay_headers",
    "remove_endpoint",
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


def relay_headers(
    token: str, origin: str, *, peer: str | None = None, contract: str | None = None
) -> dict[str, str]:
    """Headers telling this machine's API whom a relayed request is for (its receipt says
    so): ``origin`` ``peer`` (with the peer id and the contract hash it was admitted
    under) or ``spotcheck``; ``token`` (the node's control token) proves the node sent it."""
    headers = {"x-aria-relay": token, "x-aria-origin": origin}
    if origin == "peer":
        headers["x-aria-peer-request"] = "1"  # counted by the API as served for a peer
    if peer is not None:
        headers["x-aria-peer"] = peer
    if contract is not None:
        headers["x-aria-contract"] = contract
    return headers


async def api_busy(paths: AriaPaths) -> bool | None:
    """Whether the local API has requests waiting or running (None: no API answers)."""
    endpoint = read_endpoint(paths)
    if endpoint is None:
        return None
    headers = {}
    if endpoint.keys_required:
        headers["authorization"] = f"Bearer {_node_api_key(paths)}"
    try:
        async with httpx.AsyncClient(
            base_url=endpoint.url, timeout=5.0, verify=endpoint.verify()
        ) as client:
            reply = await client.get("/health", headers=headers)
        backends = reply.json().get("backends") or []
        return any(int(b.get("queued") or 0) > 0 for b in backends)
    except (httpx.HTTPError, OSError, ssl.SSLError, ValueError, AttributeError, TypeError):
        return None


async def forward(
    paths: AriaPaths,
    body: dict[str, Any],
    *,
    headers: Mapping[str, str] | None = None,
    on_headers: Callable[[httpx.Headers], None] | None = None,
) -> AsyncGenerator[str, None]:
    """POST ``body`` to the local API (``/v1/chat/completions`` for ``messages``,
    ``/v1/completions`` for a ``prompt``); yield each SSE ``data`` payload (or, for a
    non-streamed request, the one JSON response). ``headers`` are sent with it
    (:func:`relay_headers`); ``on_headers`` sees the response's (e.g. its ``x-aria-receipt``).

    Closing the generator closes the HTTP connection, which makes the API cancel the
    generation in its worker.

    Raises:
        BackendUnavailable: no API runs here, or it cannot be reached.
        AriaError: the API's own error for the request (its class, status and code).
    """
    endpoint = read_endpoint(paths)
    if endpoint is None:
        raise BackendUnavailable("no ARIA API runs on the serving node")
    # local-only: a relayed request runs on this machine's own models, never on a peer.
    sent = {**(headers or {}), "x-aria-placement": "local-only"}
    if endpoint.keys_required:
        sent["authorization"] = f"Bearer {_node_api_key(paths)}"
    timeout = httpx.Timeout(10.0, read=300.0)
    try:
        verify = endpoint.verify()
    except (OSError, ssl.SSLError) as exc:
        raise BackendUnavailable(f"cannot read the local API's TLS certificate: {exc}") from None
    path = "/v1/chat/completions" if "messages" in body else "/v1/completions"
    try:
        async with (
            httpx.AsyncClient(base_url=endpoint.url, timeout=timeout, verify=verify) as client,
            client.stream("POST", path, json=body, headers=sent) as reply,
        ):
            if reply.status_code != 200:
                raise _api_error(reply.status_code, await reply.aread())
            if on_headers is not None:
                on_headers(reply.headers)
            if not reply.headers.get("content-type", "").startswith("text/event-stream"):
                yield (await reply.aread()).decode("utf-8", errors="replace")
                return
            async for line in reply.aiter_lines():
                if line.startswith("data:"):
                    yield line[5:].strip()
    except httpx.HTTPError as exc:
        raise BackendUnavailable(f"the serving node's API failed: {exc}") from None


def _api_error(status: int, raw: bytes) -> AriaError:
    """The API's error response as the error it rendered (OpenAI body plus status)."""
    try:
        error = json.loads(raw)["error"]
    except (ValueError, KeyError, TypeError):
        error = None
    if not isinstance(error, dict):
        error = {"message": "the serving node's API refused the request"}
    fallback = RequestError if status < 500 else BackendUnavailable
    return from_wire({**error, "status": status}, fallback=fallback)


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
