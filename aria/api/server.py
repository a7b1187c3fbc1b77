"""Serving the API with hypercorn's trio worker (one process, one trio loop).

trio because py-libp2p is trio-only and the node's libp2p host joins the same loop;
FastAPI/Starlette are anyio-based and run on it unchanged.
"""

from __future__ import annotations

import contextlib
import errno
import ipaddress
import logging
import signal
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import trio
from hypercorn.config import Config
from hypercorn.trio import serve as hypercorn_serve

from aria.api.app import create_app
from aria.api.keys import KeyStore
from aria.errors import ConfigError
from aria.node import Node
from aria.p2p.local_api import EndpointReporter, remove_endpoint

__all__ = ["ServerConfig", "check_cors", "is_loopback", "serve"]


@dataclass(frozen=True)
class ServerConfig:
    """Where to listen; ``require_keys`` None means "only when not on loopback"."""

    host: str
    port: int
    require_keys: bool | None = None
    graceful_timeout_s: float = 5.0

    @property
    def keys_required(self) -> bool:
        return not is_loopback(self.host) if self.require_keys is None else self.require_keys


def is_loopback(host: str) -> bool:
    """True for addresses only this machine can reach (then API keys are optional)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a hostname: assume it is reachable from elsewhere


def check_cors(origins: list[str], *, keys_required: bool) -> None:
    """Refuse CORS open to every origin on an API that asks no key.

    Raises:
        ConfigError: ``'*'`` is among ``origins`` and no key is required.
    """
    if not keys_required and "*" in origins:
        raise ConfigError(
            "api.cors_origins lists '*' but this API requires no key: any web page could then "
            "use it; name the origins, or require keys (`aria api key create NAME`)"
        )


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
        ConfigError: a non-loopback host without any API key, CORS open to every origin
            on an API without keys, or the port is taken.
    """
    require_keys = config.keys_required
    check_cors(node.settings.api.cors_origins, keys_required=require_keys)
    if require_keys and not KeyStore(node.paths.api).all():
        raise ConfigError(
            f"the API on {config.host} requires API keys (it is reachable from other machines) "
            "and none exists: create one with `aria api key create NAME` first"
        )
    hyper = Config()
    hyper.bind = [_bind(config.host, config.port)]
    hyper.graceful_timeout = config.graceful_timeout_s
    hyper.accesslog = None
    hyper.errorlog = logging.getLogger("hypercorn.error")
    app = create_app(node, require_keys=require_keys)
    with contextlib.ExitStack() as stack:
        trigger = shutdown or _first_signal(stack)
        try:
            await hypercorn_serve(
                app,  # type: ignore[arg-type]
                hyper,
                shutdown_trigger=trigger,
                task_status=EndpointReporter(node.paths, require_keys, task_status),
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
