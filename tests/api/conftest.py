"""A real ARIA API server (hypercorn + trio in a thread, real sockets, real workers).

Models are tiny generated GGUFs imported into a temporary store: ``tiny`` (answers in
milliseconds) and ``slow`` (a few ms per token, so a stream lasts long enough to
time it, kill its backend or walk away from it).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from openai import OpenAI

from aria.api import ServerConfig
from aria.api.background import serve_in_thread
from aria.backends.launch import Engine
from aria.config import AriaPaths, AriaSettings
from aria.convert.synthetic import write_llama_gguf
from aria.hardware import detect
from aria.node import Node


@dataclass
class Server:
    url: str
    node: Node
    _opened: list[httpx.Client | OpenAI] = field(default_factory=list)

    def client(self, api_key: str = "unused") -> OpenAI:
        """An SDK client (closed with the server)."""
        client = OpenAI(base_url=f"{self.url}/v1", api_key=api_key, max_retries=0, timeout=120)
        self._opened.append(client)
        return client

    def http(self) -> httpx.Client:
        """A plain HTTP client (closed with the server, unless the test closes it first)."""
        client = httpx.Client(base_url=self.url, timeout=120)
        self._opened.append(client)
        return client

    def close_later(self, *clients: httpx.Client) -> None:
        """Close ``clients`` with the server."""
        self._opened.extend(clients)

    def close_clients(self) -> None:
        for client in self._opened:
            client.close()


@contextmanager
def running(node: Node, config: ServerConfig | None = None) -> Iterator[Server]:
    """Serve ``node`` on 127.0.0.1 (a free port) until the block ends."""
    with serve_in_thread(node, config) as url:
        server = Server(url, node)
        try:
            yield server
        finally:
            server.close_clients()


def make_node(
    home: Path, models: dict[str, Path], *, engine: Engine | None = None, **settings: object
) -> Node:
    """A node on ``home`` with ``models`` imported (``engine="fake"``: no llama.cpp)."""
    paths = AriaPaths(home)
    node = Node.create(paths, AriaSettings.model_validate(settings), hardware=detect())
    node.engine = engine
    for model_id, path in models.items():
        node.store.import_file(path, model_id=model_id)
    return node


@pytest.fixture(scope="session")
def model_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("gguf")
    return {
        "tiny": write_llama_gguf(folder / "tiny.gguf", quant="Q8_0", n_ctx=2048),
        "slow": write_llama_gguf(
            folder / "slow.gguf",
            quant="Q8_0",
            n_embd=512,
            n_layers=8,
            n_head=8,
            n_ff=1536,
            n_ctx=4096,
            seed=1,
        ),
    }


@pytest.fixture(scope="module")
def server(
    tmp_path_factory: pytest.TempPathFactory, model_files: dict[str, Path]
) -> Iterator[Server]:
    node = make_node(tmp_path_factory.mktemp("api_home"), model_files)
    with running(node) as live:
        yield live
