"""``/api/bench``: run ``aria bench`` from the dashboard and read the JSON it writes.

A run is the real command in a child process (``python -m aria bench --json FILE
--progress-json ...``): the model loads in that process, never in the API's, and the
result is exactly what ``aria bench`` writes, kept in ``ARIA_HOME/bench/``. Its
progress lines become ``bench`` events; one run at a time. The page draws its charts
(tok/s, TTFT, J/token, roofline fraction) from the JSON.
"""

from __future__ import annotations

import json
import logging
import os
import re
import sys
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from subprocess import DEVNULL
from typing import Any, Final, Literal

import anyio
from anyio.abc import ByteReceiveStream, Process
from anyio.streams.text import TextReceiveStream
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from aria.api.manage.background import Background
from aria.api.manage.events import EventHub
from aria.errors import Conflict, NotFound
from aria.node import Node

__all__ = ["BenchJobs", "BenchRequest", "router"]

log = logging.getLogger("aria.api")

_RESULT_NAME: Final = re.compile(r"^[0-9]{8}T[0-9]{6}Z(-[0-9]+)?\.json$")
_LISTED: Final = 50

router = APIRouter(tags=["bench"])

RunState = Literal["idle", "running", "done", "failed", "cancelled"]


class BenchRequest(BaseModel):
    """What to measure (the flags of ``aria bench``, bounded for a page's button)."""

    model_config = ConfigDict(extra="forbid")
    model: str | None = Field(
        default=None, max_length=128, description="An installed model (default: the embedded one)."
    )
    prompt_tokens: int = Field(default=128, ge=1, le=8192)
    gen_tokens: int = Field(default=64, ge=2, le=4096)
    runs: int = Field(default=3, ge=1, le=20)
    warmup: int = Field(default=1, ge=0, le=5)
    threads: int | None = Field(default=None, ge=1, le=1024)
    bandwidth_mib: int = Field(default=512, ge=64, le=4096)

    def arguments(self, out: Path) -> list[str]:
        args = ["--json", str(out), "--progress-json", "-p", str(self.prompt_tokens)]
        args += ["-g", str(self.gen_tokens), "-r", str(self.runs), "--warmup", str(self.warmup)]
        args += ["--bandwidth-mib", str(self.bandwidth_mib)]
        if self.model:
            args += ["-m", self.model]
        if self.threads is not None:
            args += ["-t", str(self.threads)]
        return args


@dataclass(frozen=True)
class RunStatus:
    """The ``bench`` event's data."""

    state: RunState = "idle"
    done: int = 0
    total: int = 0
    label: str = ""
    result: str | None = None
    error: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class BenchJobs(Background):
    """The benchmark runs of one API: at most one at a time, results under ``paths.bench``."""

    def __init__(self, node: Node, hub: EventHub) -> None:
        super().__init__()
        self._node = node
        self._hub = hub
        self.status = RunStatus()
        self._process: Process | None = None

    @property
    def folder(self) -> Path:
        return self._node.paths.bench

    def stop(self) -> None:
        if self._process is not None and self._process.returncode is None:
            self._process.terminate()

    def start(self, request: BenchRequest) -> RunStatus:
        """Start ``aria bench`` with ``request``'s flags.

        Raises:
            Conflict: a run is in progress. ModelNotInstalled: ``request.model`` is not installed.
        """
        if self.status.state == "running":
            raise Conflict("a benchmark is already running; wait for it or stop it")
        if request.model:
            request = request.model_copy(
                update={"model": self._node.store.get(request.model).model_id}
            )
        self.spawn(self._run, request, self._new_result_path())
        self.status = RunStatus("running", label="starting")
        self._hub.publish("bench", self.status.as_dict())
        return self.status

    def cancel(self) -> RunStatus:
        """Stop the running benchmark.

        Raises:
            NotFound: none is running.
        """
        if self.status.state != "running" or self._process is None:
            raise NotFound("no benchmark is running")
        self._process.terminate()
        return self.status

    def results(self) -> list[dict[str, Any]]:
        """The newest results first, summarised (model, generation tok/s, J/token)."""
        if not self.folder.is_dir():
            return []
        names = sorted(p.name for p in self.folder.iterdir() if _RESULT_NAME.match(p.name))
        return [self._summary(name) for name in reversed(names[-_LISTED:])]

    def result(self, name: str) -> dict[str, Any]:
        """One result's JSON, exactly as ``aria bench`` wrote it.

        Raises:
            NotFound: no such result.
        """
        path = self.folder / name
        if not _RESULT_NAME.match(name) or not path.is_file():
            raise NotFound(f"no benchmark result named {name!r}")
        report: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
        return report

    def _summary(self, name: str) -> dict[str, Any]:
        try:
            report = self.result(name)
            models = [
                {
                    "model": m["model"],
                    "gen_tok_s": m["gen_tok_s"]["median"],
                    "j_per_token": m["energy_j_per_token"]["median"],
                }
                for m in report.get("models", [])
            ]
        except (ValueError, KeyError, TypeError, NotFound):
            models = []
        return {"name": name, "models": models}

    def _new_result_path(self) -> Path:
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        path, n = self.folder / f"{stamp}.json", 1
        while path.exists():
            path, n = self.folder / f"{stamp}-{n}.json", n + 1
        return path

    def _update(self, **changes: Any) -> None:
        self.status = replace(self.status, **changes)
        self._hub.publish("bench", self.status.as_dict())

    async def _run(self, request: BenchRequest, out: Path) -> None:
        self.folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        command = [sys.executable, "-m", "aria", "bench", *request.arguments(out)]
        env = {**os.environ, "ARIA_HOME": str(self._node.paths.home)}
        errors: deque[str] = deque(maxlen=20)
        try:
            async with await anyio.open_process(command, env=env, stdin=DEVNULL) as process:
                self._process = process
                assert process.stdout is not None and process.stderr is not None
                async with anyio.create_task_group() as group:
                    group.start_soon(_collect, process.stderr, errors)
                    await self._follow(process.stdout)
                code = await process.wait()
        except OSError as exc:
            self._update(state="failed", error=f"could not start aria bench: {exc}")
            return
        except Exception:  # a bug must not take the API's task group down with it
            log.exception("benchmark run failed")
            self._update(state="failed", error="internal error; see the server log")
            return
        finally:
            self._process = None
        if code == 0 and out.is_file():
            self._update(state="done", done=self.status.total, result=out.name, label="done")
        elif code < 0:
            self._update(state="cancelled", label="stopped")
        else:
            self._update(state="failed", error=_last_error(errors, code))

    async def _follow(self, stdout: ByteReceiveStream) -> None:
        async for line in _lines(stdout):
            try:
                step = json.loads(line)
                self._update(
                    done=int(step["done"]), total=int(step["total"]), label=str(step["label"])
                )
            except (ValueError, KeyError, TypeError):
                log.debug("aria bench printed %r", line)


async def _lines(stream: ByteReceiveStream) -> AsyncIterator[str]:
    pending = ""
    async for text in TextReceiveStream(stream):
        pending += text
        *complete, pending = pending.split("\n")
        for line in complete:
            if line.strip():
                yield line.strip()


async def _collect(stream: ByteReceiveStream, into: deque[str]) -> None:
    async for line in _lines(stream):
        into.append(line)


def _last_error(lines: deque[str], code: int) -> str:
    errors = [line for line in lines if line.startswith("error:")]
    if errors:
        return errors[-1].removeprefix("error:").strip()
    return f"aria bench exited with status {code}" + (f": {lines[-1]}" if lines else "")


def _jobs(request: Request) -> BenchJobs:
    jobs: BenchJobs = request.app.state.bench
    return jobs


@router.get("/bench")
async def bench_state(request: Request) -> JSONResponse:
    """The current run (``state``, progress) and the saved results, newest first."""
    jobs = _jobs(request)
    results = await anyio.to_thread.run_sync(jobs.results)
    return JSONResponse({"run": jobs.status.as_dict(), "results": results})


@router.post("/bench", status_code=202)
async def start_bench(body: BenchRequest, request: Request) -> JSONResponse:
    """Start ``aria bench``; progress arrives as ``bench`` events."""
    return JSONResponse(_jobs(request).start(body).as_dict(), status_code=202)


@router.delete("/bench")
async def stop_bench(request: Request) -> JSONResponse:
    """Stop the running benchmark."""
    return JSONResponse(_jobs(request).cancel().as_dict())


@router.get("/bench/results/{name}")
async def bench_result(name: str, request: Request) -> JSONResponse:
    """One result, as ``aria bench --json`` wrote it."""
    return JSONResponse(await anyio.to_thread.run_sync(_jobs(request).result, name))
