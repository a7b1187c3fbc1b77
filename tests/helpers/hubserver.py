"""A real local HTTP server that serves files the way the Hugging Face hub does.

Point ``huggingface_hub`` (and ARIA) at it with ``HF_ENDPOINT=server.url``. It speaks the
part of the protocol a download uses (see docs in ``/work/shared/facts.md``):

* ``HEAD``/``GET /{repo_id}/resolve/{revision}/{filename}`` with ``X-Repo-Commit``,
  ``ETag`` (+ ``X-Linked-Etag``/``X-Linked-Size`` for LFS files, whose ETag is the sha256),
  ``Content-Length`` and ``Accept-Ranges``; ``Range: bytes=N-`` answers 206 + ``Content-Range``;
* optional same-origin redirect of LFS files to ``/cdn/...`` (the real hub redirects to a CDN);
* 404 with ``X-Error-Code`` ``RepoNotFound``/``RevisionNotFound``/``EntryNotFound``, and 401
  for gated or private repos unless ``Authorization: Bearer <token>`` is sent;

and it injects faults: drop the connection after N body bytes (per GET, or on every GET),
serve a body that differs from the advertised hash, throttle, stall, or ignore ``Range``.
Every request is recorded in ``hits`` for assertions.
"""

from __future__ import annotations

import hashlib
import socket
import threading
import time
from contextlib import suppress
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from urllib.parse import quote, unquote, urlsplit

__all__ = ["Faults", "Hit", "HubFile", "HubServer"]

_CHUNK = 8192


@dataclass
class HubFile:
    content: bytes  # what the hub says the file is (hashes and sizes are computed from it)
    commit: str
    lfs: bool = True
    served: bytes | None = None  # what GET actually sends, when it must differ (corruption)

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.content).hexdigest()

    @property
    def etag(self) -> str:
        # LFS objects are addressed by sha256; plain git files by their git blob sha1.
        if self.lfs:
            return self.sha256
        header = f"blob {len(self.content)}\0".encode()
        return hashlib.sha1(header + self.content).hexdigest()

    @property
    def body(self) -> bytes:
        return self.content if self.served is None else self.served


@dataclass
class Faults:
    cuts: list[int] = field(default_factory=list)  # GET n is cut after cuts[n] body bytes
    always_cut_after: int | None = None  # once ``cuts`` is used up, cut every GET here
    throttle_bps: int | None = None  # bytes per second per response
    stall_s: float = 0.0  # wait this long after the headers before sending the body
    ignore_range: bool = False

    def next_cut(self) -> int | None:
        return self.cuts.pop(0) if self.cuts else self.always_cut_after


@dataclass(frozen=True)
class Hit:
    method: str
    path: str
    range: str | None
    authorization: str | None


@dataclass
class _State:
    files: dict[tuple[str, str, str], HubFile] = field(default_factory=dict)
    gated: set[str] = field(default_factory=set)
    private: set[str] = field(default_factory=set)
    faults: Faults = field(default_factory=Faults)
    hits: list[Hit] = field(default_factory=list)
    redirect_lfs: bool = False
    token: str = "hf_aria_test_token"
    lock: threading.Lock = field(default_factory=threading.Lock)


class HubServer:
    """Start with ``with HubServer() as hub:``; add files with :meth:`add`."""

    def __init__(self) -> None:
        self.state = _State()
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self._httpd.daemon_threads = True
        self._httpd.hub_state = self.state  # type: ignore[attr-defined]
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host!s}:{port}"

    @property
    def faults(self) -> Faults:
        return self.state.faults

    @property
    def token(self) -> str:
        return self.state.token

    def add(
        self,
        repo: str,
        filename: str,
        content: bytes,
        *,
        revision: str = "main",
        lfs: bool = True,
        served: bytes | None = None,
    ) -> HubFile:
        commit = hashlib.sha1(f"{repo}@{revision}".encode()).hexdigest()
        hub_file = HubFile(content=content, commit=commit, lfs=lfs, served=served)
        self.state.files[(repo, revision, filename)] = hub_file
        return hub_file

    def gate(self, repo: str) -> None:
        """Make ``repo`` gated: 401 GatedRepo without the server's token."""
        self.state.gated.add(repo)

    def make_private(self, repo: str) -> None:
        """Make ``repo`` private: 401 RepoNotFound without the server's token."""
        self.state.private.add(repo)

    def redirect_lfs(self, enabled: bool = True) -> None:
        """Answer LFS resolves with a 302 to ``/cdn/<sha256>`` as the real hub does."""
        self.state.redirect_lfs = enabled

    @property
    def hits(self) -> list[Hit]:
        with self.state.lock:
            return list(self.state.hits)

    def range_gets(self) -> list[str]:
        """The ``Range`` headers of every GET that had one."""
        return [hit.range for hit in self.hits if hit.method == "GET" and hit.range]

    def start(self) -> HubServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> HubServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    @property
    def hub(self) -> _State:
        return self.server.hub_state  # type: ignore[attr-defined,no-any-return]

    def log_message(self, format: str, *args: object) -> None:
        return  # keep test output clean

    def do_HEAD(self) -> None:
        self._handle(send_body=False)

    def do_GET(self) -> None:
        self._handle(send_body=True)

    def _handle(self, *, send_body: bool) -> None:
        state = self.hub
        with state.lock:
            state.hits.append(
                Hit(
                    self.command,
                    self.path,
                    self.headers.get("Range"),
                    self.headers.get("Authorization"),
                )
            )
        self.close_connection = True
        path = unquote(urlsplit(self.path).path)
        if path.startswith("/cdn/"):
            hub_file = self._by_sha256(path.removeprefix("/cdn/"))
            if hub_file is None:
                self._error(404, "EntryNotFound")
                return
            self._serve(hub_file, send_body=send_body)
            return
        parts = path.lstrip("/").split("/")
        if len(parts) < 5 or parts[2] != "resolve":
            self._error(404, None)
            return
        repo, revision, filename = f"{parts[0]}/{parts[1]}", parts[3], "/".join(parts[4:])
        authorized = self.headers.get("Authorization") == f"Bearer {state.token}"
        if repo in state.gated and not authorized:
            self._error(401, "GatedRepo", "Access to this model is restricted.")
            return
        known_repos = {key[0] for key in state.files}
        if repo not in known_repos or (repo in state.private and not authorized):
            self._error(401 if repo in state.private else 404, "RepoNotFound")
            return
        if not any(key[0] == repo and key[1] == revision for key in state.files):
            self._error(404, "RevisionNotFound")
            return
        hub_file = state.files.get((repo, revision, filename))
        if hub_file is None:
            self._error(404, "EntryNotFound")
            return
        if hub_file.lfs and state.redirect_lfs:
            self.send_response(302)
            self._metadata_headers(hub_file)
            self.send_header("Location", f"/cdn/{quote(hub_file.sha256)}")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        self._serve(hub_file, send_body=send_body)

    def _by_sha256(self, sha256: str) -> HubFile | None:
        return next((f for f in self.hub.files.values() if f.sha256 == sha256), None)

    def _metadata_headers(self, hub_file: HubFile) -> None:
        self.send_header("X-Repo-Commit", hub_file.commit)
        self.send_header("ETag", f'"{hub_file.etag}"')
        if hub_file.lfs:
            self.send_header("X-Linked-Etag", f'"{hub_file.etag}"')
            self.send_header("X-Linked-Size", str(len(hub_file.content)))

    def _serve(self, hub_file: HubFile, *, send_body: bool) -> None:
        body = hub_file.body
        faults = self.hub.faults
        start = 0
        wanted = self.headers.get("Range")
        if send_body and wanted and not faults.ignore_range:
            start = int(wanted.removeprefix("bytes=").split("-", 1)[0])
            if start >= len(body):
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{len(body)}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
        else:
            self.send_response(200)
        self._metadata_headers(hub_file)
        self.send_header("Accept-Ranges", "bytes")
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(len(body) - start))
        self.end_headers()
        if send_body:
            self._send_body(body[start:], faults)

    def _send_body(self, body: bytes, faults: Faults) -> None:
        with self.hub.lock:
            cut = faults.next_cut()
        limit = len(body) if cut is None else min(cut, len(body))
        sent = 0
        try:
            if faults.stall_s:
                self.wfile.flush()
                time.sleep(faults.stall_s)
            while sent < limit:
                chunk = body[sent : min(sent + _CHUNK, limit)]
                self.wfile.write(chunk)
                sent += len(chunk)
                if faults.throttle_bps:
                    self.wfile.flush()
                    time.sleep(len(chunk) / faults.throttle_bps)
            self.wfile.flush()
            if sent < len(body):
                self.connection.shutdown(socket.SHUT_RDWR)  # the "network loss"
        except OSError:
            return  # the client went away (e.g. it was killed mid-transfer)

    def _error(self, status: int, code: str | None, message: str | None = None) -> None:
        self.send_response(status)
        if code:
            self.send_header("X-Error-Code", code)
        if message:
            self.send_header("X-Error-Message", message)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def end_headers(self) -> None:
        # One request per connection keeps fault injection simple; say so, so that clients
        # never reuse a connection the server is about to close.
        self.send_header("Connection", "close")
        super().end_headers()

    def finish(self) -> None:
        with suppress(OSError):
            super().finish()
