"""The router inside the node: ``auto`` follows the decision's chain for real.

Real tiny GGUFs in a real store, real worker processes: the first choice of the routing
table fails for real and the next one answers, and the route header says so.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import trio

from aria.backends import GenerationJob, GrammarSpec
from aria.config import AriaPaths, AriaSettings
from aria.convert.synthetic import write_llama_gguf
from aria.hardware import detect
from aria.node import Node
from aria.router import Category

HELLO = ({"role": "user", "content": "Tell me a joke about penguins."},)
TEXT_CATEGORIES = ("chat", "code", "math", "reasoning", "multilingual")


@pytest.fixture(scope="module")
def gguf(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_llama_gguf(tmp_path_factory.mktemp("gguf") / "tiny.gguf", n_ctx=2048)


def node_with(home: Path, gguf: Path, models: list[str], row: list[str]) -> Node:
    """A balanced node with ``models`` imported and ``row`` as every text category's row."""
    paths = AriaPaths(home)
    paths.ensure()
    (home / "routing.toml").write_text(
        "".join(f"[categories.{c}]\ndefault = {row!r}\n" for c in TEXT_CATEGORIES).replace("'", '"')
    )
    settings = AriaSettings.model_validate({"node": {"profile": "balanced"}})
    node = Node.create(paths, settings, hardware=detect())
    for model_id in models:
        node.store.import_file(gguf, model_id=model_id)
    return node


async def ask(node: Node) -> tuple[str, str]:
    job = GenerationJob(messages=HELLO, max_tokens=2)
    async with node.running(), await node.generate(job, None) as served:
        _ = [event async for event in served.events()]
        return served.model_id, served.route_header()


def test_the_table_order_drives_the_chain_and_a_failing_first_choice_falls_back(
    tmp_path: Path, gguf: Path
) -> None:
    # Alphabetically b-works would come first; the table puts z-broken first.
    node = node_with(tmp_path, gguf, ["b-works", "z-broken"], ["z-broken", "b-works"])
    with node.store.path_of("z-broken").open("r+b") as handle:
        handle.write(b"\0" * 64)  # same size, so still listed; llama.cpp cannot load it
    decision = node.route(GenerationJob(messages=HELLO))
    assert decision.chain[:2] == ("z-broken", "b-works")
    model, header = trio.run(ask, node)
    assert model == "b-works"
    assert "model=b-works" in header
    assert f"category={decision.category.value}" in header
    assert "fallbacks=z-broken:backend_unavailable" in header


def test_a_model_whose_file_vanished_is_never_chosen(tmp_path: Path, gguf: Path) -> None:
    node = node_with(tmp_path, gguf, ["b-works", "z-gone"], ["z-gone", "b-works"])
    node.store.path_of("z-gone").unlink()
    assert "z-gone" not in node.route(GenerationJob(messages=HELLO)).chain
    model, header = trio.run(ask, node)
    assert model == "b-works" and "fallbacks" not in header


def test_jobs_are_read_like_api_requests(tmp_path: Path, gguf: Path) -> None:
    node = node_with(tmp_path, gguf, ["b-works"], ["b-works"])
    tool = {"type": "function", "function": {"name": "weather", "parameters": {}}}
    tools = GenerationJob(messages=HELLO, tools=(tool,))
    assert node.route(tools).category is Category.TOOL_USE
    as_json = GenerationJob(messages=HELLO, grammar=GrammarSpec(kind="json_object"))
    assert node.route(as_json).category is Category.TOOL_USE
    prefix = "import json\n\n\ndef load(path):\n    with open(path) as handle:\n        "
    code = GenerationJob(prompt=prefix, max_tokens=16)
    assert node.route(code).category is Category.CODE
    resolution = node.resolve("auto", GenerationJob(messages=HELLO))
    assert resolution.candidates[0] == "b-works"
    assert resolution.category == "chat"
    assert node.resolve("b-works").candidates == ("b-works",)
