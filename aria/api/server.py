"""Serving the API with hypercorn's trio worker (one process, one trio loop).

trio because py-libp2p is trio-only and the node's libp2p host joins the same loop;
FastAPI/Starlette are anyio-based and run on it unchanged.

Off loopback the API needs keys, and TLS (hypercorn's ``certfile``/``keyfile`` from
``api.tls_cert``/``api.tls_key``) unless the operator says ``insecure_http`` (for a
TLS-terminating reverse proxy on the same network, see ``docs/api.md``): bearer keys
and prompts must not cross a LAN in clear by default.
"""

from __future__ import annotations

import contextlib
import errno
import ipaddress
import logging
import signal
import ssl
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import trio
from hypercorn.config import Config
from hypercorn.trio import serve as hypercorn_serve

from aria.api.app import create_app
from aria.apikeys import KeyStore
from aria.errors import ConfigError
from aria.node import Node
from aria.p2p.local_api import EndpointReporter, remove_endpoint

__all__ = ["ServerConfig", "is_loopback", "serve"]

_TLS_HANDSHAKE_S = 10.0


@dataclass(frozen=True)
class ServerConfig:
    """Where to listen; ``require_keys`` None means "only when not on loopback".

    ``tls_cert``/``tls_key`` (PEM files) serve HTTPS; ``insecure_http`` allows plain
    HTTP off loopback.
    """

    host: str
    port: int
    require_keys: bool | None = None
    graceful_timeout_s: float = 5.0
    tls_cert: Path | None = None
    tls_key: Path | None = None
    insecure_http: bool = False

    @property
    def keys_required(self) -> bool:
        return not is_loopback(self.host) if self.require_keys is None else self.require_keys

    @property
    def tls(self) -> bool:
        return self.tls_cert is not None

    def check(self) -> None:
        """Raises: ConfigError: half a TLS setting, unreadable TLS files, or plain HTTP
        off loopback without ``insecure_http``."""
        if (self.tls_cert is None) != (self.tls_key is None):
            raise ConfigError("TLS needs both api.tls_cert and api.tls_key (PEM files)")
        if self.tls_cert is not None and self.tls_key is not None:
            try:
                ssl.create_default_context(ssl.Purpose.CLIENT_AUTH).load_cert_chain(
                    self.tls_cert, self.tls_key
                )
            except (OSError, ssl.SSLError) as exc:
                raise ConfigError(
                    f"cannot use the TLS certificate {self.tls_cert} with key {self.tls_key}: "
                    f"{getattr(exc, 'strerror', None) or exc}"
                ) from None
        elif not is_loopback(self.host) and not self.insecure_http:
            raise ConfigError(
                f"the API on {self.host} would be reachable from other machines over plain "
                "HTTP (keys and prompts in clear): set api.tls_cert and api.tls_key, or serve "
                "on 127.0.0.1 behind a TLS reverse proxy, or pass --insecure-http"
            )


def is_loopback(host: str) -> bool:
    """True for addresses only this machine can reach (then API keys are optional)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a hostname: assume it is reachable from elsewhere


def _bind(host: str, port: int) -> str:
    return f"[{host.strip('[]')}]:{port}" if ":" in host else f"{host}:{port}"


async def serve(
    node: Node,
    config: ServerConfig,
    *,
    shutdown: Callable[[], Awaitable[None]] | None = None,
    task_status: Any = trio.TASK_STATUS_IGNORED,  # trio.TaskStatus[list[str]]
) -> None:
    """Serve until ``shutdown()`` returns (default: SIGINT or SIGTERM).

    ``task_status.started`` receives the bound URLs (useful with port 0).

    Raises:
        ConfigError: a non-loopback host without any API key, or without TLS (unless
            ``insecure_http``), bad TLS files, ``*`` CORS on a keyless API, or the
            port is taken.
    """
    require_keys = config.keys_required
    if require_keys and not KeyStore(node.paths.api).all():
        raise ConfigError(
            f"the API on {config.host} requires API keys (it is reachable from other machines) "
            "and none exists: create one with `aria api key create NAME` first"
        )
    config.check()
    hyper = Config()
    hyper.bind = [_bind(config.host, config.port)]
    hyper.graceful_timeout = config.graceful_timeout_s
    hyper.accesslog = None
    hyper.errorlog = logging.getLogger("hypercorn.error")
    if config.tls_cert is not None and config.tls_key is not None:
        hyper.certfile, hyper.keyfile = str(config.tls_cert), str(config.tls_key)
        hyper.ssl_handshake_timeout = _TLS_HANDSHAKE_S  # hypercorn's 60 s lets idlers hold sockets
    app = create_app(node, require_keys=require_keys, host=config.host)
    with contextlib.ExitStack() as stack:
        stop = shutdown or _first_signal(stack)

        async def trigger() -> None:
            await stop()
            app.state.events.close()  # end the dashboards' live streams: nothing holds the exit

        try:
            await hypercorn_serve(
                app,  # type: ignore[arg-type]
                hyper,
                shutdown_trigger=trigger,
                task_status=EndpointReporter(
                    node.paths, require_keys, task_status, tls_cert=config.tls_cert
                ),
            )
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise ConfigError(f"port {config.port} on {config.host} is in use") from None
            raise ConfigError(f"cannot listen on {config.host}:{config.port}: {exc}") from None
        finally:
            remove_endpoint(node.paths)  # the node then knows no API serves peers here


def _first_signal(stack: contextlib.ExitStack) -> Callable[[], Awaitable[None]]:
    """A trigger that returns on the first SIGINT/SIGTERM.

    The receiver stays open until the server has stopped, so a second, impatient
    Ctrl+C is absorbed instead of killing the loop mid-cleanup (which would leave
    worker processes behind).
    """
    signals = stack.enter_context(trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM))

    async def wait() -> None:
        async for _ in signals:
            return

    return wait
