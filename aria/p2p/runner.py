"""``aria node start`` end to end: identity, one-node-per-home lock, signals, trio.

Kept apart from ``PeerNode`` so the node itself can run inside any trio nursery, while
this module owns process-wide concerns: the pid file, log files and the signal receiver
(kept open for the whole process life, so a second SIGTERM never reaches Python's
default handler mid-shutdown). It also injects the RPC-worker starter
(:func:`aria.rpc.workers.start_rpc_worker`) the node lends compute with.
"""

from __future__ import annotations

import logging
import signal
from collections.abc import Callable, Sequence
from logging.handlers import RotatingFileHandler

import trio

from aria.config import AriaPaths, AriaSettings
from aria.p2p.identity import load_or_create_identity
from aria.p2p.lifecycle import pid_lock
from aria.p2p.local import detect_hardware
from aria.p2p.node import NodeOptions, PeerNode
from aria.p2p.services import ServiceFactory
from aria.p2p.spec import load_spec
from aria.p2p.transport.host import quiet_libp2p_logs
from aria.p2p.views import NetworkStatus
from aria.rpc.workers import start_rpc_worker

__all__ = ["run_node"]

log = logging.getLogger(__name__)


_LOG_BYTES = 10 * 1024**2
_LOG_BACKUPS = 3


def _configure_logging(paths: AriaPaths) -> None:
    """``logs/node.log``, rotated at 10 MiB (three old files kept)."""
    paths.ensure()
    handler = RotatingFileHandler(
        paths.logs / "node.log",
        maxBytes=_LOG_BYTES,
        backupCount=_LOG_BACKUPS,
        encoding="utf-8",
    )
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    quiet_libp2p_logs(handler)


def run_node(
    paths: AriaPaths,
    settings: AriaSettings,
    options: NodeOptions,
    on_ready: Callable[[NetworkStatus], None] | None = None,
    services: Sequence[ServiceFactory] = (),
) -> None:
    """Run the node in the foreground until SIGTERM/SIGINT, then clean up; ``services``
    (e.g. the model library) run inside it.

    Raises:
        IdentityError: the identity file exists but is corrupted.
        PeerError: another node already runs on this ARIA home.
    """
    key = load_or_create_identity(paths)
    with pid_lock(paths):
        _configure_logging(paths)
        local = detect_hardware()
        node = PeerNode(
            paths, settings, options, key, load_spec(), local, start_rpc_worker, services=services
        )

        async def main() -> None:
            with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
                async with trio.open_nursery() as nursery:
                    await nursery.start(node.run)
                    log.info("node %s started", key.peer_id)
                    if on_ready is not None:
                        on_ready(node.status())
                    async for signum in signals:
                        log.info("received signal %d, stopping", signum)
                        node.stop()
                        break

        trio.run(main)
        log.info("node %s stopped", key.peer_id)
