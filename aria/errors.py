"""ARIA's typed error hierarchy.

Every failure a user can cause or meet is an ``AriaError`` subclass carrying what
each boundary needs to render it: the HTTP status and OpenAI error ``type``/``code``
for the API, and a stable exit code for the CLI. Boundaries translate exactly once:
``aria.api`` renders ``{"error": {...}}`` and ``aria.cli`` prints one line.

Between processes (a model worker's pipe, the node's control channel, the inference
protocol between peers, the node forwarding a peer's request to this machine's API) an
error travels in one wire form, :meth:`AriaError.to_wire` (OpenAI's error object plus the
HTTP status), and comes back as the same class with :func:`from_wire`, which resolves
the code over the whole tree: a peer's ``context_length_exceeded`` is a 400
``ContextLengthExceeded`` on the client's side too.

``falls_back`` marks *availability* errors: this candidate cannot serve now (not
installed, its backend did not start or crashed, the peer is unreachable or refused, no
placement), so a fallback chain tries its next entry. Every other error is about the
request itself and reaches the client at once.

    AriaError
    ├── ConfigError
    ├── CatalogError
    │   ├── ModelNotFound            unknown catalog id (404)
    │   ├── ModelNotInstalled        known id, file not in the store (404)
    │   ├── LicenceRejected          a licence the gate refuses (red, or yellow in the catalog)
    │   ├── LicenceNotAccepted       yellow licence imported without --accept-license
    │   ├── ModelCannotRun           no engine of this node runs it (download refused)
    │   └── DeniedFile               sha256 on the denylist
    ├── StoreError
    │   ├── DownloadError            network loss, HTTP 401/404/5xx from the hub
    │   ├── IntegrityError           sha256 or size mismatch; the file is never used
    │   ├── InsufficientDiskSpace
    │   └── StoreBusy                another process holds the model's lock
    ├── RequestError
    │   ├── InvalidRequest           400
    │   ├── AuthenticationError      401
    │   ├── PayloadTooLarge          413
    │   ├── ContextLengthExceeded    400, prompt longer than the context window
    │   ├── RequestTimeout           408, the body did not arrive in time
    │   ├── MisdirectedRequest       421, a Host this keyless API does not answer to
    │   └── OriginRefused            403, a browser origin CORS does not allow
    ├── RateLimited                  429, a full queue or a key's quota (``retry_after_s``)
    │   └── ServerBusy               503, too many requests in progress at once
    ├── HardwareError                the machine's hardware cannot be read
    ├── LedgerError                  the provenance ledger cannot be opened, written or read
    │   └── LedgerTampered           verification found an edited, missing or forged entry
    ├── ContractError                the consent contract is invalid, unsigned or edited by hand
    ├── RoutingError                 no model can serve the request (503)
    │   └── PlacementRefused         no set of peers can hold a split model
    ├── BackendError
    │   ├── BackendUnavailable       could not start or load (503)
    │   ├── BackendCrashed           died with a request in flight (503)
    │   └── RequestFailed            one request failed; the backend lives on (500, no fallback)
    ├── PeerError
    │   ├── IdentityError            unreadable or corrupted node key
    │   ├── NodeNotRunning           no local node answers its control channel (503)
    │   ├── HandshakeRejected
    │   └── ConsentRefused
    └── MemoryStoreError             the memory database cannot be used (500)
        ├── MemoryDisabled           memory is off for this node or API key (403)
        └── MemoryNotFound           no memory or reminder has that id (404)
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

__all__ = [
    "AriaError",
    "AuthenticationError",
    "BackendCrashed",
    "BackendError",
    "BackendUnavailable",
    "CatalogError",
    "ConfigError",
    "Conflict",
    "ConsentRefused",
    "ContextLengthExceeded",
    "ContractError",
    "DeniedFile",
    "DownloadError",
    "HandshakeRejected",
    "HardwareError",
    "IdentityError",
    "InsufficientDiskSpace",
    "IntegrityError",
    "InvalidRequest",
    "LedgerError",
    "LedgerTampered",
    "LicenceNotAccepted",
    "LicenceRejected",
    "MemoryDisabled",
    "MemoryNotFound",
    "MemoryStoreError",
    "MisdirectedRequest",
    "ModelCannotRun",
    "ModelNotFound",
    "ModelNotInstalled",
    "NodeNotRunning",
    "NotFound",
    "OriginRefused",
    "PayloadTooLarge",
    "PeerError",
    "PlacementRefused",
    "RateLimited",
    "RequestError",
    "RequestFailed",
    "RequestTimeout",
    "RoutingError",
    "ServerBusy",
    "StoreBusy",
    "StoreError",
    "UnsupportedMediaType",
    "from_wire",
]


class AriaError(Exception):
    """Base of every error ARIA raises on purpose.

    ``message`` is one readable sentence meant for the user; ``param`` names the
    offending request field when there is one.
    """

    http_status: int = 500
    openai_type: str = "server_error"
    code: str = "internal_error"
    exit_code: int = 1
    falls_back: ClassVar[bool] = False

    def __init__(self, message: str, *, param: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.param = param

    def to_wire(self) -> dict[str, Any]:
        """The error as it crosses a process boundary (read back with :func:`from_wire`)."""
        return {
            "code": self.code,
            "message": self.message,
            "param": self.param,
            "type": self.openai_type,
            "status": self.http_status,
        }


class ConfigError(AriaError):
    http_status = 500
    code = "config_error"
    exit_code = 2


class CatalogError(AriaError):
    http_status = 400
    openai_type = "invalid_request_error"
    code = "catalog_error"
    exit_code = 3
    falls_back = True


class ModelNotFound(CatalogError):
    http_status = 404
    code = "model_not_found"


class ModelNotInstalled(CatalogError):
    http_status = 404
    code = "model_not_installed"


class LicenceRejected(CatalogError):
    code = "licence_rejected"


class LicenceNotAccepted(CatalogError):
    code = "licence_not_accepted"


class ModelCannotRun(CatalogError):
    http_status = 409
    code = "model_cannot_run"


class DeniedFile(CatalogError):
    http_status = 403
    code = "denied_file"


class StoreError(AriaError):
    code = "store_error"
    exit_code = 4
    falls_back = True


class DownloadError(StoreError):
    code = "download_failed"


class IntegrityError(StoreError):
    code = "integrity_error"


class InsufficientDiskSpace(StoreError):
    code = "insufficient_disk_space"


class StoreBusy(StoreError):
    code = "store_busy"


class RequestError(AriaError):
    http_status = 400
    openai_type = "invalid_request_error"
    code = "invalid_request"
    exit_code = 2


class InvalidRequest(RequestError):
    pass


class AuthenticationError(RequestError):
    http_status = 401
    openai_type = "authentication_error"
    code = "invalid_api_key"


class PayloadTooLarge(RequestError):
    http_status = 413
    code = "payload_too_large"


class ContextLengthExceeded(RequestError):
    code = "context_length_exceeded"


class RequestTimeout(RequestError):
    http_status = 408
    code = "request_timeout"


class MisdirectedRequest(RequestError):
    """A ``Host`` header naming another site: what a DNS-rebinding page sends."""

    http_status = 421
    code = "misdirected_request"


class OriginRefused(RequestError):
    http_status = 403
    openai_type = "permission_error"
    code = "origin_not_allowed"


class UnsupportedMediaType(RequestError):
    """A state-changing request that is not JSON: what a cross-site HTML form sends."""

    http_status = 415
    code = "unsupported_media_type"


class NotFound(RequestError):
    """The named thing (an API key, a job, a result) does not exist."""

    http_status = 404
    code = "not_found"


class Conflict(RequestError):
    """The request contradicts the current state (a name taken, a job already running)."""

    http_status = 409
    code = "conflict"


class RateLimited(AriaError):
    """Back-pressure: come back after ``retry_after_s`` (OpenAI's 429 shape)."""

    http_status = 429
    openai_type = "requests"
    code = "rate_limit_exceeded"
    exit_code = 5

    def __init__(
        self, message: str, *, retry_after_s: float = 1.0, param: str | None = None
    ) -> None:
        super().__init__(message, param=param)
        self.retry_after_s = retry_after_s

    def to_wire(self) -> dict[str, Any]:
        return {**super().to_wire(), "retry_after_s": self.retry_after_s}


class ServerBusy(RateLimited):
    """Too many requests in progress on this server (its connection cap)."""

    http_status = 503
    openai_type = "server_error"
    code = "server_busy"


class HardwareError(AriaError):
    code = "hardware_error"
    exit_code = 7


class LedgerError(AriaError):
    code = "ledger_error"
    exit_code = 8


class LedgerTampered(LedgerError):
    code = "ledger_tampered"
    exit_code = 9


class ContractError(AriaError):
    code = "contract_error"
    exit_code = 2


class RoutingError(AriaError):
    http_status = 503
    openai_type = "server_error"
    code = "no_route"
    exit_code = 5
    falls_back = True


class PlacementRefused(RoutingError):
    code = "no_placement"


class BackendError(AriaError):
    http_status = 503
    openai_type = "server_error"
    code = "backend_error"
    exit_code = 5
    falls_back = True


class BackendUnavailable(BackendError):
    code = "backend_unavailable"


class BackendCrashed(BackendError):
    code = "backend_crashed"


class RequestFailed(BackendError):
    """The backend could not run one request (an unexpected failure while preparing or
    generating it); unlike :class:`BackendCrashed` the backend keeps serving."""

    http_status = 500
    code = "request_failed"
    falls_back = False  # the request's own failure: another model would not be asked


class PeerError(AriaError):
    http_status = 502
    code = "peer_error"
    exit_code = 6
    falls_back = True


class IdentityError(PeerError):
    code = "identity_error"


class NodeNotRunning(PeerError):
    http_status = 503
    code = "node_not_running"


class HandshakeRejected(PeerError):
    code = "handshake_rejected"


class ConsentRefused(PeerError):
    http_status = 403
    openai_type = "permission_error"
    code = "consent_refused"


class MemoryStoreError(AriaError):
    code = "memory_error"
    exit_code = 8


class MemoryDisabled(MemoryStoreError):
    http_status = 403
    openai_type = "permission_error"
    code = "memory_disabled"


class MemoryNotFound(MemoryStoreError):
    http_status = 404
    openai_type = "invalid_request_error"
    code = "memory_not_found"


_MAX_CODE = 64
_MAX_MESSAGE = 2000
_MAX_PARAM = 256


def _classes_by_code() -> dict[str, type[AriaError]]:
    """Every public class below the root (subclasses defined elsewhere too) by its code; of
    classes sharing a code the most derived wins (``InvalidRequest`` over ``RequestError``).
    The root's ``internal_error`` is left out: it names no kind, so the caller's
    ``fallback`` says what such a failure is on its side."""
    found: dict[str, type[AriaError]] = {}
    pending: list[type[AriaError]] = list(AriaError.__subclasses__())
    while pending:
        cls = pending.pop(0)
        if not cls.__name__.startswith("_"):
            found[cls.code] = cls
        pending.extend(cls.__subclasses__())
    return found


def _text(value: object, limit: int) -> str | None:
    return value[:limit] if isinstance(value, str) and value else None


def from_wire(wire: Mapping[str, Any], *, fallback: type[AriaError] = AriaError) -> AriaError:
    """The error a wire form (:meth:`AriaError.to_wire`, or an OpenAI error object with
    ``status`` added) describes: the class its ``code`` names anywhere in the tree, with
    the wire's message, param, status and type. An unknown code gives ``fallback``
    carrying the wire's code, status and type, so nothing the sender said is lost.
    Untrusted input is fine: fields of the wrong type or size are cut or ignored.
    """
    code = _text(wire.get("code"), _MAX_CODE)
    message = _text(wire.get("message"), _MAX_MESSAGE) or "the other side reported an error"
    param = _text(wire.get("param"), _MAX_PARAM)
    cls = _classes_by_code().get(code or "", fallback)
    error = (
        cls(message, param=param, retry_after_s=_retry_after(wire))
        if issubclass(cls, RateLimited)
        else cls(message, param=param)
    )
    status = wire.get("status")
    if isinstance(status, int) and not isinstance(status, bool) and 400 <= status <= 599:
        error.http_status = status
    kind = _text(wire.get("type"), _MAX_CODE)
    if kind is not None:
        error.openai_type = kind
    if code is not None:
        error.code = code
    return error


def _retry_after(wire: Mapping[str, Any]) -> float:
    value = wire.get("retry_after_s")
    if isinstance(value, int | float) and not isinstance(value, bool) and 0 <= value <= 3600:
        return float(value)
    return 1.0
