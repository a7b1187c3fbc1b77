"""One worker OS process seen from the node: spawn, handshake, messages, stop, kill.

Only anyio primitives are used, so this runs on the API's trio loop as well as in
the CLI. Every read turns a dead process (EOF on its stdout) into ``BackendCrashed``
with the exit status, so a caller never waits on a corpse.
"""

from __future__ import annotations

import contextlib
import signal
import subprocess
from pathlib import Path
from typing import IO, Any

import anyio
from anyio.abc import Process

from aria.backends.launch import WorkerLaunch
from aria.backends.protocol import WorkerInfo, decode, encode, error_from_wire
from aria.errors import BackendCrashed, BackendUnavailable

__all__ = ["WorkerProcess", "describe_exit"]

# A line can carry a whole batch of embeddings; anything larger is a broken worker.
_MAX_LINE = 256 * 1024 * 1024
_STOP_GRACE_S = 3.0
# Written to the log before each start, so a failure report quotes only this run.
_START_MARK = b"=== aria backend start ===\n"


def describe_exit(returncode: int | None) -> str:
    """``exit code 1`` / ``killed by SIGKILL`` / ``still running``."""
    if returncode is None:
        return "still running"
    if returncode < 0:
        try:
            return f"killed by {signal.Signals(-returncode).name}"
        except ValueError:
            return f"killed by signal {-returncode}"
    return f"exit code {returncode}"


class WorkerProcess:
    """A spawned worker; use :meth:`spawn`."""

    def __init__(self, process: Process, log: IO[bytes], log_path: Path) -> None:
        self._process = process
        self._log = log
        self.log_path = log_path
        assert process.stdout is not None and process.stdin is not None
        self._stdin = process.stdin
        self._stdout = process.stdout
        self._buffer = bytearray()
        self._sending = anyio.Lock()  # several requests share the pipe
        self._reaped = False

    @classmethod
    async def spawn(cls, launch: WorkerLaunch, log_path: Path) -> WorkerProcess:
        """Start the worker process (it begins loading at once); stderr goes to ``log_path``.

        Raises:
            BackendUnavailable: the process could not be created.
        """
        log_path.parent.mkdir(parents=True, exist_ok=True)
        log = log_path.open("ab")
        log.write(_START_MARK)
        log.flush()
        try:
            process = await anyio.open_process(
                launch.argv(), stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log
            )
        except OSError as exc:
            log.close()
            raise BackendUnavailable(f"could not start a backend process: {exc}") from None
        return cls(process, log, log_path)

    @property
    def pid(self) -> int:
        return self._process.pid

    @property
    def returncode(self) -> int | None:
        return self._process.returncode

    async def handshake(self, timeout_s: float) -> WorkerInfo:
        """Wait for the model to load, then prove the worker answers (a ping).

        Raises:
            BackendUnavailable: it failed to load, died, or took longer than ``timeout_s``.
        """
        try:
            with anyio.fail_after(timeout_s):
                info = await self._await_ready()
                await self.send({"op": "ping", "id": 0})
                if (await self.receive()).get("ev") != "pong":
                    raise BackendUnavailable("the backend did not answer its health check")
                return info
        except TimeoutError:
            raise BackendUnavailable(
                f"the backend did not become ready within {timeout_s:.0f} s"
            ) from None
        except BackendCrashed as exc:
            raise BackendUnavailable(f"the backend failed to start: {exc.message}") from None

    async def _await_ready(self) -> WorkerInfo:
        while True:
            message = await self.receive()
            event = message.get("ev")
            if event == "ready":
                return WorkerInfo.from_wire(message["info"])
            if event == "error":
                raise BackendUnavailable(error_from_wire(message).message)

    async def send(self, message: dict[str, Any]) -> None:
        """Raises: BackendCrashed: the process is gone (its stdin is closed)."""
        try:
            async with self._sending:
                await self._stdin.send(encode(message))
        except (anyio.BrokenResourceError, anyio.ClosedResourceError, OSError):
            raise BackendCrashed(await self._death_notice()) from None

    async def receive(self) -> dict[str, Any]:
        """The next message. Raises: BackendCrashed: EOF (the process died) or garbage."""
        while (end := self._buffer.find(b"\n")) < 0:
            if len(self._buffer) > _MAX_LINE:
                raise BackendCrashed("the backend wrote a message larger than 256 MiB")
            try:
                self._buffer += await self._stdout.receive(65536)
            except (anyio.EndOfStream, anyio.ClosedResourceError, anyio.BrokenResourceError):
                raise BackendCrashed(await self._death_notice()) from None
        line = bytes(self._buffer[: end + 1])
        del self._buffer[: end + 1]
        return decode(line)

    def buffered(self) -> dict[str, Any] | None:
        """The next message if it has already arrived (no waiting), else ``None``.

        Lets a reader that fell behind take several tokens in one step.
        """
        end = self._buffer.find(b"\n")
        if end < 0:
            return None
        line = bytes(self._buffer[: end + 1])
        del self._buffer[: end + 1]
        return decode(line)

    async def _death_notice(self) -> str:
        with anyio.move_on_after(2.0):
            await self._process.wait()
        tail = _last_line(self.log_path)
        detail = f" ({tail})" if tail else ""
        return f"the backend process stopped: {describe_exit(self.returncode)}{detail}"

    async def stop(self) -> None:
        """Ask the worker to exit (close its stdin), then kill it after a grace period."""
        with anyio.CancelScope(shield=True):
            with contextlib.suppress(anyio.BrokenResourceError, OSError):
                await self._stdin.aclose()
            with anyio.move_on_after(_STOP_GRACE_S):
                await self._process.wait()
            await self.kill()

    async def kill(self) -> None:
        """SIGKILL (if still running) and reap the process; idempotent."""
        if self._reaped:
            return
        self._reaped = True
        with anyio.CancelScope(shield=True):
            if self._process.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    self._process.kill()
            await self._process.wait()
            await self._process.aclose()
            self._log.close()


def _last_line(path: Path, limit: int = 4096) -> str:
    """The last non-empty line this run wrote to the log (its own explanation of a failure)."""
    try:
        with path.open("rb") as handle:
            handle.seek(0, 2)
            size = handle.tell()
            handle.seek(max(0, size - limit))
            text = handle.read().decode("utf-8", errors="replace")
    except OSError:
        return ""
    text = text.rpartition(_START_MARK.decode())[2]
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1][:300] if lines else ""
