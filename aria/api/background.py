"""Run the API in a background thread (its own trio loop) and get its URL.

For benchmarks and tests that drive the real server with blocking clients from the
calling thread; ``aria api start`` serves in the main thread instead.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from functools import partial

import trio

from aria.api.server import ServerConfig, serve
from aria.node import Node

__all__ = ["serve_in_thread"]


@contextmanager
def serve_in_thread(
    node: Node, config: ServerConfig | None = None, start_timeout_s: float = 60.0
) -> Iterator[str]:
    """Serve ``node`` (default: 127.0.0.1 on a free port) while the block runs.

    Yields the base URL (``http://127.0.0.1:PORT``). Start-up errors (``ConfigError``
    for a busy port...) are raised in the calling thread.
    """
    config = config or ServerConfig("127.0.0.1", 0)
    urls: list[str] = []
    failure: list[BaseException] = []
    stop = threading.Event()
    started = threading.Event()

    async def until_stopped() -> None:
        while not stop.is_set():
            await trio.sleep(0.02)

    async def main() -> None:
        async with trio.open_nursery() as nursery:
            urls.extend(await nursery.start(partial(serve, node, config, shutdown=until_stopped)))
            started.set()

    def run() -> None:
        try:
            trio.run(main)
        except BaseException as exc:  # re-raised in the caller's thread below
            failure.append(exc)
        finally:
            started.set()

    worker = threading.Thread(target=run, name="aria-api", daemon=True)
    worker.start()
    started.wait(start_timeout_s)
    if failure:
        raise failure[0]
    if not urls:
        stop.set()
        raise TimeoutError(f"the API did not start within {start_timeout_s:.0f} s")
    try:
        yield urls[0]
    finally:
        stop.set()
        worker.join(60)
