"""ARIA's typed error hierarchy.

Every failure a user can cause or meet is an ``AriaError`` subclass carrying what
each boundary needs to render it: the HTTP status and OpenAI error ``type``/``code``
for the API, and a stable exit code for the CLI. Boundaries translate exactly once:
``aria.api`` renders ``{"error": {...}}`` and ``aria.cli`` prints one line.

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
    │   └── RequestFailed            one request failed; the backend lives on (500)
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

    def __init__(self, message: str, *, param: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.param = param


class ConfigError(AriaError):
    http_status = 500
    code = "config_error"
    exit_code = 2


class CatalogError(AriaError):
    http_status = 400
    openai_type = "invalid_request_error"
    code = "catalog_error"
    exit_code = 3


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


class PlacementRefused(RoutingError):
    code = "no_placement"


class BackendError(AriaError):
    http_status = 503
    openai_type = "server_error"
    code = "backend_error"
    exit_code = 5


class BackendUnavailable(BackendError):
    code = "backend_unavailable"


class BackendCrashed(BackendError):
    code = "backend_crashed"


class RequestFailed(BackendError):
    """The backend could not run one request (an unexpected failure while preparing or
    generating it); unlike :class:`BackendCrashed` the backend keeps serving."""

    http_status = 500
    code = "request_failed"


class PeerError(AriaError):
    http_status = 502
    code = "peer_error"
    exit_code = 6


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
