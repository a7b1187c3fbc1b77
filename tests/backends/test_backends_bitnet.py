"""The bitnet.cpp engine: a real worker process proxying to a (stand-in) llama-server."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from aria.backends import GenerationJob, GrammarSpec, WorkerLaunch
from aria.backends.process import WorkerProcess
from aria.backends.protocol import error_from_wire
from aria.convert.synthetic import BitnetQuant, write_bitnet_gguf
from aria.errors import ContextLengthExceeded, InvalidRequest

pytestmark = pytest.mark.anyio

STANDIN = Path(__file__).with_name("bitnet_standin.py")


@pytest.fixture
def server_binary(tmp_path: Path) -> Path:
    binary = tmp_path / "bitnet-llama-server"
    binary.write_text(f'#!/bin/sh\nexec {sys.executable} {STANDIN} "$@"\n')
    binary.chmod(0o755)
    return binary


def bitnet_launch(tmp: Path, server_binary: Path, quant: BitnetQuant, n_ctx: int) -> WorkerLaunch:
    """A bitnet.cpp-engine launch for a generated ternary model."""
    model = write_bitnet_gguf(tmp / "ternary.gguf", quant=quant)
    return WorkerLaunch(
        model_path=str(model),
        n_ctx=n_ctx,
        threads=1,
        engine="bitnet-server",
        server_binary=str(server_binary),
    )


async def collect(
    process: WorkerProcess, request_id: int, job: GenerationJob, cancel_after: int | None = None
) -> tuple[str, dict]:  # type: ignore[type-arg]
    await process.send({"op": "generate", "id": request_id, "job": job.to_wire()})
    text = ""
    while True:
        message = await process.receive()
        if message["ev"] == "tok":
            text += message["text"]
            if cancel_after is not None and text.count(" ") == cancel_after:
                await process.send({"op": "cancel", "id": request_id})
        elif message["ev"] == "error":
            raise error_from_wire(message)
        else:
            return text, message


async def test_worker_proxies_to_the_bitnet_server(tmp_path: Path, server_binary: Path) -> None:
    launch = bitnet_launch(tmp_path, server_binary, "TQ2_0", n_ctx=512)
    process = await WorkerProcess.spawn(launch, tmp_path / "worker.log")
    try:
        info = await process.handshake(60)
        assert info.engine == "bitnet.cpp" and info.chat_template and info.n_embd == 256
        hello = ({"role": "user", "content": "hello there"},)
        text, done = await collect(process, 1, GenerationJob(messages=hello, max_tokens=5))
        assert text == "w0 w1 w2 w3 w4 "
        assert (done["finish_reason"], done["completion_tokens"]) == ("length", 5)
        _, cancelled = await collect(
            process, 2, GenerationJob(messages=hello, max_tokens=400), cancel_after=3
        )
        assert cancelled["finish_reason"] == "cancelled" and cancelled["completion_tokens"] < 400
        with pytest.raises(ContextLengthExceeded):
            await collect(process, 3, GenerationJob(prompt="x " * 600))
        grammar = GrammarSpec(kind="json_object")
        _, done = await collect(
            process, 4, GenerationJob(prompt="a b", max_tokens=2, grammar=grammar)
        )
        assert done["finish_reason"] == "length"
        await process.send({"op": "embed", "id": 5, "input": ["x"]})
        with pytest.raises(InvalidRequest, match="embeddings"):
            raise error_from_wire(await process.receive())
    finally:
        await process.stop()


@pytest.mark.skipif(sys.platform != "linux", reason="parent-death signal is Linux-only")
async def test_the_server_dies_with_its_worker(tmp_path: Path, server_binary: Path) -> None:
    import os
    import signal

    import anyio

    launch = bitnet_launch(tmp_path, server_binary, "TQ1_0", n_ctx=256)
    process = await WorkerProcess.spawn(launch, tmp_path / "worker.log")
    await process.handshake(60)
    children = Path(f"/proc/{process.pid}/task/{process.pid}/children").read_text().split()
    assert len(children) == 1
    os.kill(process.pid, signal.SIGKILL)
    await process.kill()
    with anyio.fail_after(10):
        while Path(f"/proc/{children[0]}").exists():
            await anyio.sleep(0.05)


@pytest.mark.skipif(sys.platform != "linux", reason="reads the worker's children from /proc")
async def test_a_dead_server_under_a_live_worker_restarts_the_backend(
    tmp_path: Path, server_binary: Path
) -> None:
    import os
    import signal

    from aria.backends import Dispatcher, DoneEvent, Limits
    from aria.catalog import ModelId
    from aria.errors import BackendCrashed

    launch = bitnet_launch(tmp_path, server_binary, "TQ2_0", n_ctx=256)
    job = GenerationJob(messages=({"role": "user", "content": "hi"},), max_tokens=3)
    dispatcher = Dispatcher(Limits(4 * 1024**3, 2, 600), tmp_path / "logs")
    tern = ModelId("tern")

    async def generate() -> str:
        async with dispatcher.lease(tern, launch, 1024**3) as lease:
            generation = await lease.generate(job)
            text = ""
            while not isinstance(event := await generation.next_event(), DoneEvent):
                text += event.text
            return text

    async with dispatcher.running():
        first = await generate()
        worker = dispatcher.pid_of(tern)
        assert worker is not None
        server = Path(f"/proc/{worker}/task/{worker}/children").read_text().split()
        os.kill(int(server[0]), signal.SIGKILL)  # the engine dies, the worker lives on
        with pytest.raises(BackendCrashed):
            await generate()
        assert await generate() == first  # a fresh worker (and server) took over
        assert dispatcher.pid_of(tern) not in (None, worker)


def test_the_bitnet_server_answers_only_its_worker(tmp_path: Path, server_binary: Path) -> None:
    """It is started with a random API key: another local process gets 401."""
    import httpx

    from aria.backends.bitnet_engine import BitnetServerEngine

    engine = BitnetServerEngine(bitnet_launch(tmp_path, server_binary, "TQ2_0", n_ctx=512))
    try:
        url = str(engine._http.base_url)
        stranger = httpx.post(f"{url}/tokenize", json={"content": "hello world"}, timeout=10)
        assert stranger.status_code == 401
        assert engine.tokenize(GenerationJob(prompt="hello world", max_tokens=1))
    finally:
        engine.close()
