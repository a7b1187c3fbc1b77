"""The bitnet.cpp engine: a worker that drives bitnet.cpp's ``llama-server`` over HTTP.

bitnet.cpp ships a fork of llama.cpp's server with ternary kernels. The worker starts
it on 127.0.0.1 (a free port, never reachable from elsewhere), renders prompts itself
(the chat template and token ids come from the GGUF, read with the ``gguf`` package)
and proxies ``/tokenize`` and streaming ``/completion``. Closing the HTTP stream is how
a generation is cancelled. Embeddings are not offered by this engine.
"""

from __future__ import annotations

import json
import os
import secrets
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Generator, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import httpx

from aria.backends.engine import Embeddings, Finished
from aria.backends.grammar import compile_grammar
from aria.backends.launch import WorkerLaunch
from aria.backends.prompting import ChatTemplate, generation_budget
from aria.backends.protocol import FinishReason, GenerationJob, WorkerInfo
from aria.errors import BackendCrashed, BackendUnavailable, InvalidRequest

__all__ = ["BitnetServerEngine", "read_model_facts"]

_START_TIMEOUT_S = 300.0


def read_model_facts(path: str) -> dict[str, Any]:
    """Chat template, special tokens and sizes from the GGUF header (no llama.cpp needed)."""
    from gguf import GGUFReader

    reader = GGUFReader(path)

    def value(key: str) -> Any:
        field = reader.fields.get(key)
        return None if field is None else field.contents()

    arch = value("general.architecture") or ""
    tokens = value("tokenizer.ggml.tokens") or []

    def token(key: str) -> str:
        index = value(key)
        return tokens[index] if isinstance(index, int) and 0 <= index < len(tokens) else ""

    return {
        "template": value("tokenizer.chat_template"),
        "bos": token("tokenizer.ggml.bos_token_id"),
        "eos": token("tokenizer.ggml.eos_token_id"),
        "n_vocab": len(tokens),
        "n_embd": int(value(f"{arch}.embedding_length") or 0),
    }


def _die_with_parent() -> None:
    """In the server's child process (Linux): get SIGTERM when the worker dies, even by
    SIGKILL, so no server outlives its worker."""
    import ctypes
    import signal

    pr_set_pdeathsig = 1
    ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class BitnetServerEngine:
    """One bitnet.cpp server process per model, owned by this worker."""

    def __init__(self, launch: WorkerLaunch) -> None:
        if not launch.server_binary:
            raise BackendUnavailable("the bitnet-server engine needs a server binary")
        facts = read_model_facts(launch.model_path)
        self.template = ChatTemplate(
            facts["template"], bos_token=facts["bos"], eos_token=facts["eos"]
        )
        port = _free_port()
        # A random key per server: other local processes (or a web page that finds the
        # port) cannot use it and bypass ARIA's own API keys.
        key = secrets.token_hex(32)  # never starts with "-", which a parser reads as a flag
        command = [
            launch.server_binary,
            "-m",
            launch.model_path,
            "-c",
            str(launch.n_ctx),
            "-t",
            str(launch.threads),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--api-key",
            key,
        ]
        # Its log joins the worker's stderr, which the dispatcher sends to the backend log.
        self._server = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=2,
            stderr=2,
            preexec_fn=_die_with_parent if sys.platform == "linux" else None,
        )
        self._http = httpx.Client(
            base_url=f"http://127.0.0.1:{port}",
            headers={"Authorization": f"Bearer {key}"},
            timeout=None,
        )
        self._wait_healthy()
        self.info = WorkerInfo(
            engine="bitnet.cpp",
            n_ctx=launch.n_ctx,
            n_vocab=facts["n_vocab"],
            n_embd=facts["n_embd"],
            chat_template=facts["template"] is not None,
            pid=os.getpid(),
        )

    def _wait_healthy(self) -> None:
        deadline = time.monotonic() + _START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self._server.poll() is not None:
                raise BackendUnavailable(
                    f"the bitnet.cpp server exited with code {self._server.returncode}"
                )
            try:
                if self._http.get("/health", timeout=2).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        self.close()
        raise BackendUnavailable("the bitnet.cpp server did not become healthy in time")

    @contextmanager
    def _server_call(self) -> Iterator[None]:
        """The server is this engine: when it cannot be reached, the engine is gone."""
        try:
            yield
        except httpx.TransportError as exc:
            code = self._server.poll()
            state = f"exited with code {code}" if code is not None else f"failed ({exc})"
            raise BackendCrashed(f"the bitnet.cpp server {state}") from None

    def tokenize(self, job: GenerationJob) -> list[int]:
        rendered = self.template.render(job)
        with self._server_call():
            response = self._http.post(
                "/tokenize",
                json={"content": rendered.text, "add_special": not rendered.has_special},
            )
        response.raise_for_status()
        tokens: list[int] = response.json()["tokens"]
        if not tokens:
            raise InvalidRequest("the prompt is empty", param="prompt")
        return tokens

    def generate(
        self, job: GenerationJob, cancelled: Callable[[], bool]
    ) -> Generator[str, None, Finished]:
        prompt = self.tokenize(job)
        budget = generation_budget(len(prompt), job.max_tokens, self.info.n_ctx)
        body: dict[str, Any] = {
            "prompt": prompt,
            "n_predict": budget,
            "stream": True,
            "cache_prompt": True,
            "temperature": job.temperature,
            "top_p": job.top_p,
            "stop": list(job.stop),
            "presence_penalty": job.presence_penalty,
            "frequency_penalty": job.frequency_penalty,
            "logit_bias": [[token, bias] for token, bias in job.logit_bias.items()],
        }
        if job.seed is not None:
            body["seed"] = job.seed
        if job.grammar is not None:
            body["grammar"] = compile_grammar(job.grammar)
        produced, finish = 0, "length"
        with self._server_call(), self._http.stream("POST", "/completion", json=body) as response:
            response.raise_for_status()
            for line in response.iter_lines():
                if not line.startswith("data: "):
                    continue
                event = json.loads(line[6:])
                if event.get("content"):
                    produced += 1  # the server streams one event per token
                    yield event["content"]
                if event.get("stop"):
                    produced = int(event.get("tokens_predicted", 0))
                    finish = "length" if event.get("stopped_limit") else "stop"
                    break
                if cancelled():
                    finish = "cancelled"  # leaving the block closes the stream: the server stops
                    break
        reason: FinishReason = (
            "stop" if finish == "stop" else ("cancelled" if finish == "cancelled" else "length")
        )
        return Finished(reason, len(prompt), produced)

    def embed(self, texts: Sequence[str], cancelled: Callable[[], bool]) -> Embeddings:
        raise InvalidRequest("embeddings are not available from a bitnet.cpp server backend")

    def close(self) -> None:
        self._http.close()
        if self._server.poll() is None:
            self._server.terminate()
            try:
                self._server.wait(5)
            except subprocess.TimeoutExpired:
                self._server.kill()
                self._server.wait()
