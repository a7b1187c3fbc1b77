"""The adapter that runs one ggml-rpc connection through an :class:`RpcFilter`.

It moves bytes and time, nothing else (every decision is the filter's): what the peer
sends goes into the filter and only what the filter releases reaches the worker; the
worker's answers go back the same way; the filter's deadline (idle, session length) is
armed as a timer. When the filter refuses, or either side ends, both sides are closed
at once, exactly like :func:`aria.p2p.transport.relay.pipe`, so the peer's client sees a reset
and the worker a closed connection, never half a command.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from contextlib import suppress

import anyio

from aria.p2p.transport.relay import Duplex, RelayStats
from aria.rpc.filter import Refusal, RpcFilter

__all__ = ["guarded", "guarded_pipe"]

_CHUNK = 256 * 1024
_TICK_S = 1.0
_ENDED = (anyio.EndOfStream, anyio.BrokenResourceError, anyio.ClosedResourceError, OSError)


async def guarded_pipe(
    near: Duplex,
    far: Duplex,
    machine: RpcFilter,
    stats: RelayStats,
    clock: Callable[[], float] = time.monotonic,
) -> Refusal | None:
    """Serve one connection: ``near`` is the peer's client, ``far`` the worker.

    Returns the filter's refusal when it cut the session (None when a side ended).
    """
    to_client = anyio.Lock()  # both directions may release bytes for the peer
    machine.start(clock())
    try:
        async with anyio.create_task_group() as group:

            async def flush(from_client: bool) -> None:
                if from_client:  # only the peer's bytes release bytes for the worker
                    data = machine.data_for_worker()
                    if data:
                        await far.send(bytes(data))
                        stats.add(to_far=len(data))
                if machine.refusal is not None:
                    group.cancel_scope.cancel()
                    return
                data = machine.data_for_client()
                if data:
                    # Taken before the lock, which is acquired without yielding: two tasks
                    # cannot reorder the answers, and the common case (nothing) costs nothing.
                    async with to_client:
                        await near.send(bytes(data))
                    stats.add(to_near=len(data))

            async def one_way(source: Duplex, from_client: bool) -> None:
                with suppress(*_ENDED):
                    while True:
                        data = await source.receive(_CHUNK)
                        if from_client:
                            machine.receive_client(data, clock())
                        else:
                            machine.receive_worker(data, clock())
                        await flush(from_client)
                group.cancel_scope.cancel()

            async def timer() -> None:
                # The deadline may move (activity, a peer waiting): re-read it each second.
                while (deadline := machine.deadline) is not None:
                    await anyio.sleep(min(_TICK_S, max(0.0, deadline - clock())))
                    machine.handle_timer(clock())
                group.cancel_scope.cancel()

            group.start_soon(one_way, near, True)
            group.start_soon(one_way, far, False)
            group.start_soon(timer)
    finally:  # never leave the worker's one client slot or the peer's stream open
        with anyio.CancelScope(shield=True):
            for stream in (near, far):
                with suppress(anyio.BrokenResourceError, OSError):
                    await stream.aclose()
    return machine.refusal


def guarded(
    machine: Callable[[], RpcFilter],
) -> Callable[[Duplex, Duplex, RelayStats], Awaitable[Refusal | None]]:
    """A :class:`~aria.p2p.transport.relay.Relay` ``join`` that filters each connection through a
    fresh ``machine()``."""

    async def join(near: Duplex, far: Duplex, stats: RelayStats) -> Refusal | None:
        return await guarded_pipe(near, far, machine(), stats)

    return join
