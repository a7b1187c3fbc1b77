"""Fixtures for the model store: a local hub server, test catalogs, tiny GGUF files."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from aria.catalog.denylist import Denylist
from aria.catalog.entries import CatalogEntry
from aria.config import AriaPaths
from aria.store import HubConfig, ModelStore
from tests.helpers.hubserver import HubServer
from tests.store.support import FAST_RETRY, catalog_of, denylist_of


@pytest.fixture
def hub(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[HubServer]:
    """A running local hub; ``HF_ENDPOINT`` points at it and no real token leaks in."""
    with HubServer() as server:
        monkeypatch.setenv("HF_ENDPOINT", server.url)
        monkeypatch.setenv("HF_HOME", str(tmp_path / "hf_home"))
        monkeypatch.delenv("HF_TOKEN", raising=False)
        monkeypatch.delenv("HUGGING_FACE_HUB_TOKEN", raising=False)
        yield server


StoreFactory = Callable[..., ModelStore]


@pytest.fixture
def make_store(aria_paths: AriaPaths, hub: HubServer) -> StoreFactory:
    """Build a store over ``entries`` talking to the local hub, with fast retries."""

    def build(*entries: CatalogEntry, denylist: Denylist | None = None, **kw: Any) -> ModelStore:
        kw.setdefault("hub_config", HubConfig(endpoint=hub.url, timeout_s=5.0))
        kw.setdefault("retry", FAST_RETRY)
        return ModelStore(aria_paths, catalog_of(*entries), denylist or denylist_of(), **kw)

    return build


@pytest.fixture
def make_gguf(tmp_path: Path) -> Callable[..., Path]:
    """Write a tiny GGUF (metadata + one small tensor) with the given licence."""
    from gguf import GGUFWriter, LlamaFileType

    def write(name: str, licence: str | None, *, seed: int = 0, arch: str = "llama") -> Path:
        path = tmp_path / f"{name}.gguf"
        writer = GGUFWriter(path, arch)
        writer.add_name(name)
        if licence is not None:
            writer.add_license(licence)
        writer.add_context_length(512)
        writer.add_file_type(LlamaFileType.ALL_F32)
        data = np.random.default_rng(seed).standard_normal((8, 32)).astype(np.float32)
        writer.add_tensor("token_embd.weight", data)
        writer.write_header_to_file()
        writer.write_kv_data_to_file()
        writer.write_tensors_to_file()
        writer.close()
        return path

    return write
