"""Model downloads started from the API: one job per model, live progress, cancel.

A job runs :meth:`ModelStore.download` (the same verified path as ``aria model
download``) in a worker thread. Its progress callback measures speed and ETA
(:class:`Throughput`) and publishes at most a few ``download`` events a second; cancel
sets a flag the callback turns into an exception between two chunks, so the transfer
stops at once and its ``.part`` file stays for a later resume (the store's own resume
rules apply). Every job ends ``done``, ``failed`` (with the store's one-line error) or
``cancelled``, and a ``models`` event tells pages to re-read the catalog.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from dataclasses import asdict, dataclass, replace
from typing import Any, Final, Literal

import anyio

from aria.api.manage.background import Background
from aria.api.manage.events import EventHub
from aria.catalog.runnable import runnability
from aria.errors import AriaError, Conflict, ModelCannotRun, NotFound
from aria.node import Node

__all__ = ["DownloadState", "Downloads", "Throughput"]

log = logging.getLogger("aria.api")

_PUBLISH_EVERY_S: Final = 0.25

JobState = Literal["running", "done", "failed", "cancelled"]


class Throughput:
    """Transfer speed over a sliding window and the time left (pure: time is passed in).

    Bytes that were already on disk when the transfer started (a resumed ``.part``)
    never count as speed: the first sample only sets the baseline.
    """

    def __init__(self, window_s: float = 3.0) -> None:
        self._window_s = window_s
        self._samples: deque[tuple[float, int]] = deque()

    def add(self, now: float, done: int) -> None:
        self._samples.append((now, done))
        while len(self._samples) > 2 and now - self._samples[1][0] >= self._window_s:
            self._samples.popleft()

    def speed(self) -> float | None:
        """Bytes per second over the window, or None before two samples apart in time."""
        if len(self._samples) < 2:
            return None
        (t0, b0), (t1, b1) = self._samples[0], self._samples[-1]
        return (b1 - b0) / (t1 - t0) if t1 > t0 else None

    def eta(self, done: int, total: int) -> float | None:
        """Seconds left at the current speed (None when unknown or stalled)."""
        speed = self.speed()
        if speed is None or speed <= 0:
            return None
        return max(0.0, (total - done) / speed)


@dataclass(frozen=True)
class DownloadState:
    """What a page shows for one download (the ``download`` event's data)."""

    model_id: str
    state: JobState
    done_bytes: int = 0
    total_bytes: int | None = None
    speed_bps: float | None = None
    eta_s: float | None = None
    error: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class _Cancelled(Exception):
    """Raised from the progress callback to stop a transfer between two chunks."""


class _Job:
    def __init__(self, model_id: str, hub: EventHub) -> None:
        self.state = DownloadState(model_id, "running")
        self.cancel = threading.Event()
        self._hub = hub
        self._rate = Throughput()
        self._published = 0.0

    def progress(self, done: int, total: int) -> None:
        """The store's callback (worker thread): measure, maybe publish, maybe stop."""
        if self.cancel.is_set():
            raise _Cancelled
        now = time.monotonic()
        self._rate.add(now, done)
        self.state = replace(
            self.state,
            done_bytes=done,
            total_bytes=total,
            speed_bps=self._rate.speed(),
            eta_s=self._rate.eta(done, total),
        )
        if now - self._published >= _PUBLISH_EVERY_S or done >= total:
            self._published = now
            self._hub.publish_from_thread("download", self.state.as_dict())


class Downloads(Background):
    """The running and finished downloads of one API (the latest job per model)."""

    def __init__(self, node: Node, hub: EventHub) -> None:
        super().__init__()
        self._node = node
        self._hub = hub
        self._jobs: dict[str, _Job] = {}

    def stop(self) -> None:
        for job in self._jobs.values():
            job.cancel.set()

    def snapshot(self) -> list[dict[str, Any]]:
        return [job.state.as_dict() for job in self._jobs.values()]

    def start(self, model_id: str, *, anyway: bool = False) -> DownloadState:
        """Start downloading catalog model ``model_id`` (a no-op job if it is installed).

        Raises:
            ModelNotFound: not a catalog id. ModelCannotRun: no engine here runs it and
            ``anyway`` is false. Conflict: it is already downloading.
        """
        entry = self._node.catalog.get(model_id)
        verdict = runnability(entry, bitnet_cpp=self._node.bitnet_server is not None)
        if not verdict.ok and not anyway:
            raise ModelCannotRun(
                f"{entry.id} cannot run on this node: {verdict.reason}; run `{verdict.remedy}` "
                "first, or download it anyway",
                param="model",
            )
        current = self._jobs.get(entry.id)
        if current is not None and current.state.state == "running":
            raise Conflict(f"{entry.id} is already downloading", param="model")
        job = _Job(entry.id, self._hub)
        self.spawn(self._run, job)
        self._jobs[entry.id] = job
        self._hub.publish("download", job.state.as_dict())
        return job.state

    def cancel(self, model_id: str) -> DownloadState:
        """Ask the running download of ``model_id`` to stop (its partial file is kept).

        Raises:
            NotFound: no download of ``model_id`` is running.
        """
        job = self._jobs.get(self._node.store.canonical_id(model_id))
        if job is None or job.state.state != "running":
            raise NotFound(f"no download of {model_id} is running", param="model")
        job.cancel.set()
        return job.state

    async def _run(self, job: _Job) -> None:
        model_id = job.state.model_id
        try:
            model = await anyio.to_thread.run_sync(
                lambda: self._node.store.download(model_id, progress=job.progress)
            )
            size = model.size_bytes
            job.state = replace(job.state, state="done", done_bytes=size, total_bytes=size)
        except _Cancelled:
            job.state = replace(job.state, state="cancelled", speed_bps=None, eta_s=None)
        except AriaError as exc:
            job.state = replace(job.state, state="failed", error=exc.message, eta_s=None)
        except Exception:  # a bug must not take the API's task group down with it
            log.exception("download of %s failed", model_id)
            error = "internal error; see the server log"
            job.state = replace(job.state, state="failed", error=error, eta_s=None)
        self._hub.publish("download", job.state.as_dict())
        self._hub.publish("models", {"changed": model_id})
