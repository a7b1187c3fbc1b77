"""Real ``aria node start`` processes for multi-node tests, each with its own ARIA_HOME.

Queries go through the real CLI (``aria network ... --json``), run in the node's
network namespace when it has one, so they exercise the same path a user does.
Every wait is bounded; ``stop`` always reaps the process.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from aria.catalog import load_catalog, load_denylist
from aria.config import AriaPaths
from aria.p2p.local_api import read_endpoint
from aria.store import ModelStore

T = TypeVar("T")


def wait_for(probe: Callable[[], T | None], timeout_s: float, what: str, every_s: float = 0.5) -> T:
    """Poll ``probe`` until it returns a truthy value; fail with ``what`` after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s:.0f} s waiting for {what}")
        time.sleep(every_s)


def verified(node: NodeProc, peer_id: str) -> bool:
    """Whether ``node`` lists ``peer_id`` as a verified ARIA peer."""
    return bool((node.peer(peer_id) or {}).get("verified"))


# ``aria`` with the test overrides of tests/helpers/patched_aria.py (catalog, denylist...).
PATCHED_ARIA = str(Path(__file__).resolve().parents[1] / "helpers" / "patched_aria.py")


def aria_command(patched: bool) -> list[str]:
    return [sys.executable, PATCHED_ARIA] if patched else [sys.executable, "-m", "aria"]


@dataclass
class NodeProc:
    home: Path
    proc: subprocess.Popen[bytes]
    netns: str | None = None
    env: dict[str, str] = field(default_factory=dict)  # ARIA_TEST_* overrides

    @property
    def paths(self) -> AriaPaths:
        return AriaPaths(self.home)

    def _prefix(self) -> list[str]:
        return ["ip", "netns", "exec", self.netns] if self.netns else []

    def cli(self, *args: str, timeout_s: float = 60) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*self._prefix(), *aria_command(bool(self.env)), *args],
            capture_output=True,
            text=True,
            env={**_env(self.home), **self.env},
            timeout=timeout_s,
            check=False,
        )

    def query(self, *args: str) -> Any:
        result = self.cli("network", *args, "--json")
        if result.returncode != 0:
            return None
        return json.loads(result.stdout)

    def status(self) -> dict[str, Any] | None:
        return self.query("status")  # type: ignore[no-any-return]

    def peers(self) -> list[dict[str, Any]]:
        return self.query("peers") or []

    def peer(self, peer_id: str) -> dict[str, Any] | None:
        return next((p for p in self.peers() if p["peer_id"] == peer_id), None)

    def log(self) -> str:
        path = self.home / "logs" / "node.log"
        out = self.home / "stdout.log"
        text = path.read_text(errors="replace") if path.exists() else ""
        return text + (out.read_text(errors="replace") if out.exists() else "")

    def stop(self, timeout_s: float = 30) -> int:
        """SIGTERM and reap; returns the exit code (kills after ``timeout_s``)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError(
                f"node in {self.home} ignored SIGTERM\n{self.log()[-3000:]}"
            ) from None


def _env(home: Path) -> dict[str, str]:
    env = {"ARIA_HOME": str(home), "PATH": os.environ.get("PATH", "/usr/bin:/bin")}
    if "ARIA_DEBUG" in os.environ:
        env["ARIA_DEBUG"] = os.environ["ARIA_DEBUG"]
    return env


def start_node(
    home: Path,
    *args: str,
    netns: str | None = None,
    timeout_s: float = 60,
    env: dict[str, str] | None = None,
) -> NodeProc:
    """Start ``aria node start ARGS`` and wait until its control channel answers
    (``env``: ``ARIA_TEST_*`` overrides, which run tests/helpers/patched_aria.py)."""
    home.mkdir(parents=True, exist_ok=True)
    prefix = ["ip", "netns", "exec", netns] if netns else []
    with (home / "stdout.log").open("ab") as out:  # the child keeps its own descriptor
        proc = subprocess.Popen(
            [*prefix, *aria_command(bool(env)), "node", "start", *args],
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**_env(home), **(env or {})},
        )
    node = NodeProc(home, proc, netns, dict(env or {}))

    def ready() -> bool:
        if proc.poll() is not None:
            raise AssertionError(f"node exited with {proc.returncode}\n{node.log()[-3000:]}")
        return node.status() is not None

    try:
        wait_for(ready, timeout_s, f"the node in {home} to start")
    except BaseException:
        node.stop()
        raise
    return node


@dataclass
class Api:
    """A real ``aria api start`` process on 127.0.0.1 (a free port)."""

    home: Path
    proc: subprocess.Popen[bytes]
    url: str

    def stop(self, timeout_s: float = 20) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def start_api(home: Path, *, extra_env: dict[str, str] | None = None) -> Api:
    """Start ``aria api start`` on ``home`` (``extra_env`` added to its environment) and
    wait until it wrote its endpoint file."""
    with (home / "api.log").open("wb") as log:  # the child keeps its own descriptor
        proc = subprocess.Popen(
            [sys.executable, "-m", "aria", "api", "start", "--host", "127.0.0.1", "--port", "0"],
            env={**_env(home), **(extra_env or {})},
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    endpoint = wait_for(lambda: read_endpoint(AriaPaths(home)), 60, f"the API in {home}")
    return Api(home, proc, endpoint.url)


def cli(home: Path, *args: str) -> str:
    """``aria ARGS`` on ``home``; its stdout (fails the test on a non-zero exit)."""
    done = subprocess.run(
        [sys.executable, "-m", "aria", *args],
        env=_env(home),
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return done.stdout


def install(home: Path, gguf: Path, model_id: str | None = None) -> None:
    """Import ``gguf`` into ``home``'s store (as ``model_id``)."""
    ModelStore(AriaPaths(home), load_catalog(), load_denylist()).import_file(
        gguf, model_id=model_id
    )


def aria_cli(home: Path, *args: str, timeout_s: float = 60) -> subprocess.CompletedProcess[str]:
    """``aria ARGS`` for ``home`` (not checked: the caller reads returncode/stderr)."""
    return subprocess.run(
        [sys.executable, "-m", "aria", *args],
        env=_env(home),
        capture_output=True,
        text=True,
        timeout=timeout_s,
        check=False,
    )
