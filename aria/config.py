"""Where ARIA keeps its files, and the operator's settings.

``ARIA_HOME`` (or the platform's user data dir) holds everything a node owns::

    config.toml      operator settings (this module)
    models/          the verified model store (aria.store)
    node/            identity key, control-channel token, pid files (aria.p2p)
    api/             hashed API keys (aria.api)
    ledger/          the signed provenance ledger and its archives (aria.ledger)
    memory/          one private memory database per user or API key (aria.memory)
    logs/            backend and node logs
    cache/           re-creatable downloads (the embedded model's wheel)
    bench/           results of benchmarks run from the dashboard (``aria bench`` JSON)

Settings are loaded once at the edge (the CLI) and passed down explicitly; tests
build ``AriaSettings`` objects directly. Environment variables ``ARIA_<SECTION>__<FIELD>``
override the file (e.g. ``ARIA_INFERENCE__THREADS=4``).
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import platformdirs
import tomli_w
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    SettingsError,
)

from aria.errors import ConfigError
from aria.files import write_atomic

__all__ = [
    "ApiSettings",
    "AriaPaths",
    "AriaSettings",
    "ConsentSettings",
    "InferenceSettings",
    "LedgerSettings",
    "MemorySettings",
    "NodeSettings",
    "P2PSettings",
    "PlacementPreference",
    "load_settings",
    "update_settings",
]


@dataclass(frozen=True)
class AriaPaths:
    """The directory layout under one ARIA home."""

    home: Path

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> AriaPaths:
        env = os.environ if environ is None else environ
        override = env.get("ARIA_HOME")
        home = Path(override) if override else Path(platformdirs.user_data_dir("aria", "aria"))
        return cls(home.expanduser().resolve())

    @property
    def config_file(self) -> Path:
        return self.home / "config.toml"

    @property
    def models(self) -> Path:
        return self.home / "models"

    @property
    def node(self) -> Path:
        return self.home / "node"

    @property
    def api(self) -> Path:
        return self.home / "api"

    @property
    def ledger(self) -> Path:
        return self.home / "ledger"

    @property
    def memory(self) -> Path:
        """One SQLite file per user (created 0700 on first use, never by :meth:`ensure`)."""
        return self.home / "memory"

    @property
    def logs(self) -> Path:
        return self.home / "logs"

    @property
    def bench(self) -> Path:
        """``aria bench`` results (JSON) of the runs started from the dashboard."""
        return self.home / "bench"

    @property
    def cache(self) -> Path:
        """Re-creatable downloads (e.g. the embedded model's wheel); safe to delete."""
        return self.home / "cache"

    def ensure(self) -> None:
        """Create the layout (private to the user: it holds keys and prompts in logs); a
        home created before, or loosened since, is made private again."""
        for directory in (self.home, self.models, self.node, self.api, self.ledger, self.logs):
            directory.mkdir(parents=True, exist_ok=True, mode=0o700)
            if directory.stat().st_mode & 0o077:
                directory.chmod(0o700)


# Where a request runs first (aria.router.placement explains each choice).
PlacementPreference = Literal["local-first", "peers-first", "local-only"]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class NodeSettings(_Section):
    profile: str = Field(
        default="efficient", description="Profile preset deciding the enabled tiers."
    )
    placement: PlacementPreference = Field(
        default="local-first",
        description=(
            "Where a request runs first: this machine's models, then peers' (local-first), "
            "peers' first (peers-first), or this machine's alone (local-only). Peers are "
            "used only with consent.use_peers on."
        ),
    )


class InferenceSettings(_Section):
    threads: int | None = Field(
        default=None,
        ge=1,
        le=1024,
        description="Threads per backend; default follows the hardware advice.",
    )
    measured_threads: dict[str, int] = Field(
        default_factory=dict,
        description="Best decode threads per model id, measured by `aria bench --sweep --save`.",
    )
    memory_budget_gb: float | None = Field(
        default=None,
        gt=0,
        description="RAM the node may use for loaded models; default from hardware.",
    )
    idle_timeout_s: float = Field(
        default=900.0, gt=0, description="Unload a backend after this many idle seconds."
    )
    max_loaded: int = Field(
        default=4, ge=1, le=64, description="Most backends kept loaded at once."
    )
    context_length: int | None = Field(
        default=None,
        ge=256,
        description="Context window per backend; default: model's, capped at 8192.",
    )
    bitnet_server: str | None = Field(
        default=None,
        description="Path to a bitnet.cpp llama-server binary for the Efficiency tier.",
    )
    max_waiting: int | None = Field(
        default=16,
        ge=0,
        le=4096,
        description="Requests that may wait per backend; more get a 429 (none: unbounded).",
    )
    parallel: int = Field(
        default=8,
        ge=1,
        le=64,
        description="Most requests one backend decodes together (continuous batching).",
    )
    kv_budget_gb: float | None = Field(
        default=None,
        gt=0,
        description="K/V cache memory per backend for parallel requests; default: the "
        "backend's share of the memory budget (memory_budget / max_loaded - model).",
    )


class ApiSettings(_Section):
    host: str = Field(default="127.0.0.1", description="Address the API listens on.")
    port: int = Field(default=3000, ge=0, le=65535, description="TCP port of the API.")
    cors_origins: list[str] = Field(
        default_factory=list, description="Origins allowed by CORS (closed when empty)."
    )
    max_body_bytes: int = Field(
        default=4 * 1024 * 1024, ge=1024, description="Largest accepted request body, in bytes."
    )
    body_timeout_s: float = Field(
        default=30.0, gt=0, le=3600, description="Time a client has to send its request body."
    )
    max_connections: int = Field(
        default=128, ge=1, le=65536, description="Requests in progress at once; more get a 503."
    )
    max_requests_per_key: int | None = Field(
        default=None,
        ge=1,
        description="Inference requests one API key may have in progress (none: no limit).",
    )
    allowed_hosts: list[str] = Field(
        default_factory=list,
        description="Host names a keyless API answers to besides loopback and api.host.",
    )
    tls_cert: str | None = Field(
        default=None, description="PEM certificate (chain) to serve HTTPS with api.tls_key."
    )
    tls_key: str | None = Field(default=None, description="PEM private key of api.tls_cert.")


class ConsentSettings(_Section):
    share_inference: bool = Field(
        default=False, description="Accept inference requests from peers."
    )
    use_peers: bool = Field(default=False, description="Allow this node to send prompts to peers.")
    max_remote_jobs: int = Field(
        default=1, ge=0, le=64, description="Concurrent jobs accepted from peers."
    )
    max_remote_tokens: int = Field(
        default=1024, ge=1, description="Most tokens generated for one peer request."
    )
    share_rpc: bool = Field(
        default=False, description="Lend this machine's compute for split inference."
    )
    rpc_memory_gb: float = Field(
        default=2.0, gt=0, description="Memory offered to split inference."
    )
    rpc_peers: list[str] = Field(
        default_factory=list,
        description="Peer ids that may borrow compute; '*' means any verified peer.",
    )
    rpc_min_reputation: float = Field(
        default=0.0, ge=0, le=1, description="Lowest reputation (0..1) a borrower may have."
    )
    rpc_idle_timeout_s: float = Field(
        default=300.0, ge=5, description="End a borrower's session after this many idle seconds."
    )
    rpc_session_max_s: float = Field(
        default=6 * 3600.0, ge=60, description="Longest a borrower's session may last."
    )
    rpc_session_max_gb: float = Field(
        default=64.0, gt=0, description="Most data one borrower's session may send, in GB."
    )
    share_library: bool = Field(
        default=False,
        description="Serve published model files (green licences only) to peers' libraries "
        "(seeds the first consent contract's library task; then `aria node share --library`).",
    )
    library_max_uploads: int = Field(
        default=4, ge=1, le=64, description="Peers served model files at once."
    )
    library_upload_mbps: float = Field(
        default=0.0, ge=0, description="Upload bandwidth for the library, Mbit/s (0: no cap)."
    )
    library_peer_mbps: float = Field(
        default=0.0, ge=0, description="Upload bandwidth one peer may use, Mbit/s (0: no cap)."
    )
    library_peer_gb_per_day: float = Field(
        default=50.0, gt=0, description="Most model data one peer may fetch from here a day, GB."
    )


class LedgerSettings(_Section):
    enabled: bool = Field(
        default=True, description="Record a signed receipt of every inference (docs/ledger.md)."
    )
    record_texts: bool = Field(
        default=False,
        description="Keep prompt and output texts in receipts (by default only their hashes).",
    )
    max_entries: int = Field(
        default=200_000,
        ge=100,
        description="Entries kept before older ones are archived behind a checkpoint.",
    )
    spot_check_rate: float = Field(
        default=0.1,
        ge=0,
        le=1,
        description="Share of peers' greedy answers re-executed here to check them.",
    )
    spot_check_pending: int = Field(
        default=64, ge=0, le=10_000, description="Peers' answers kept waiting for a check."
    )


class MemorySettings(_Section):
    enabled: bool = Field(
        default=True, description="Keep a local memory at all (off: nothing is stored)."
    )
    chat: bool = Field(default=True, description="Use memory in `aria chat` unless --no-memory.")
    api: bool = Field(
        default=False,
        description="Use memory for API requests without an API key (keys: `aria api key memory`).",
    )
    recall: int = Field(default=5, ge=1, le=20, description="Most memories put in one prompt.")
    extract: bool = Field(
        default=True,
        description="Let a capable chat model (see extract_min_params_b) extract facts.",
    )
    extract_min_params_b: float = Field(
        default=1.0, gt=0, description="Smallest model (billions of parameters) that extracts."
    )


class P2PSettings(_Section):
    port: int = Field(default=8765, ge=0, le=65535, description="TCP port of the libp2p host.")
    bootstrap: list[str] = Field(default_factory=list, description="Bootstrap peer multiaddrs.")
    mdns: bool = Field(default=True, description="Discover peers on the LAN with mDNS.")
    lan: bool = Field(
        default=True,
        description="Dial peers' private addresses in this machine's own subnets (home/office "
        "networks); turn off on a public server.",
    )
    announce: list[str] = Field(
        default_factory=list,
        description="Addresses to advertise (multiaddrs); default: the primary LAN address "
        "and public ones.",
    )
    max_connections: int = Field(
        default=64, ge=8, le=4096, description="Most open connections (high watermark)."
    )
    max_per_ip: int = Field(
        default=8, ge=1, le=1024, description="Most connections with one IP address."
    )
    max_per_subnet: int = Field(
        default=16, ge=1, le=4096, description="Most connections with one /24 (IPv6: /48)."
    )
    max_unverified: int = Field(
        default=16,
        ge=1,
        le=1024,
        description="Most connections that have not completed the ARIA handshake yet.",
    )
    relay: bool = Field(
        default=False, description="Act as a circuit-relay v2 relay for private peers."
    )


class AriaSettings(BaseSettings):
    """All operator settings; sections mirror ``config.toml``."""

    model_config = SettingsConfigDict(
        env_prefix="ARIA_", env_nested_delimiter="__", extra="forbid", validate_assignment=True
    )

    node: NodeSettings = Field(default_factory=NodeSettings)
    inference: InferenceSettings = Field(default_factory=InferenceSettings)
    api: ApiSettings = Field(default_factory=ApiSettings)
    consent: ConsentSettings = Field(default_factory=ConsentSettings)
    ledger: LedgerSettings = Field(default_factory=LedgerSettings)
    p2p: P2PSettings = Field(default_factory=P2PSettings)
    memory: MemorySettings = Field(default_factory=MemorySettings)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # The environment beats config.toml (passed as init values), as operators expect.
        return env_settings, init_settings


def load_settings(paths: AriaPaths) -> AriaSettings:
    """Read ``config.toml`` (if any) and apply ``ARIA_*`` environment overrides.

    Raises:
        ConfigError: the file is not valid TOML, or it or the environment holds an
            invalid value.
    """
    return _validated(paths, _read_file(paths))


def update_settings(paths: AriaPaths, changes: Mapping[str, Mapping[str, Any]]) -> AriaSettings:
    """Set ``changes`` (section -> key -> value) in ``config.toml`` and return the result.

    Only the named keys change: the rest of the file stays as the operator wrote it, and
    values that came from ``ARIA_*`` variables are never written into it.

    Raises:
        ConfigError: a value is invalid, or the file cannot be read or written.
    """
    data = _read_file(paths)
    for section, values in changes.items():
        data[section] = {**data.get(section, {}), **values}
    settings = _validated(paths, data)
    try:
        write_atomic(paths.config_file, tomli_w.dumps(data))
    except OSError as exc:
        raise ConfigError(f"cannot write {paths.config_file}: {exc.strerror or exc}") from exc
    return settings


def _read_file(paths: AriaPaths) -> dict[str, Any]:
    if not paths.config_file.exists():
        return {}
    try:
        return tomllib.loads(paths.config_file.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{paths.config_file} is not valid TOML: {exc}") from exc
    except OSError as exc:
        raise ConfigError(f"cannot read {paths.config_file}: {exc.strerror or exc}") from exc


def _validated(paths: AriaPaths, data: dict[str, Any]) -> AriaSettings:
    source = f"{paths.config_file} or the ARIA_* environment"
    try:
        return AriaSettings(**data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        raise ConfigError(f"{source}: {where}: {first['msg']}") from exc
    except SettingsError as exc:  # an ARIA_* variable pydantic-settings cannot parse
        raise ConfigError(f"invalid ARIA_* environment variable: {exc}") from exc
