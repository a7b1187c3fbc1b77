"""A node whose catalog also lists a tiny generated model published on a local hub mirror.

The model is a real GGUF (aria.convert.synthetic), so once downloaded it loads and answers
(noise, its weights are random); the hub is :class:`tests.helpers.hubserver.HubServer`,
which speaks the protocol the real hub speaks. The download code is ARIA's own.
"""

from __future__ import annotations

from pathlib import Path

from aria.catalog import CatalogEntry, load_catalog, load_denylist
from aria.catalog.loader import Catalog
from aria.config import AriaPaths, AriaSettings
from aria.convert import write_llama_gguf
from aria.hardware import detect
from aria.node import Node
from aria.store import HubConfig, ModelStore, RetryPolicy
from tests.helpers.hubserver import HubServer
from tests.store.support import hub_entry, sha256

__all__ = ["HUB_MODEL", "hub_node", "publish_model"]

HUB_MODEL = "hub-tiny"
_REPO = "aria-test/hub-tiny"
_FILE = "hub-tiny.Q8_0.gguf"


def publish_model(hub: HubServer, folder: Path, model_id: str = HUB_MODEL) -> CatalogEntry:
    """Write a ~6 MB model, put it on ``hub`` and return its catalog entry (sha pinned)."""
    path = write_llama_gguf(folder / f"{model_id}.gguf", n_embd=512, n_layers=4, n_ff=1024)
    content = path.read_bytes()
    hub.add(_REPO, _FILE, content)
    return hub_entry(model_id, repo=_REPO, file=_FILE, sha=sha256(content), size=len(content))


def hub_node(home: Path, hub: HubServer, *entries: CatalogEntry, **settings: object) -> Node:
    """A node over ARIA's catalog plus ``entries``, downloading from ``hub``."""
    paths = AriaPaths(home)
    paths.ensure()
    shipped = load_catalog()
    catalog = Catalog(
        entries=(*shipped.entries, *entries), default_model_id=shipped.default_model_id
    )
    store = ModelStore(
        paths,
        catalog,
        load_denylist(),
        hub_config=HubConfig(endpoint=hub.url, timeout_s=10.0),
        retry=RetryPolicy(attempts=3, backoff_s=0.05, max_backoff_s=0.2, read_timeout_s=10.0),
    )
    return Node(
        paths=paths,
        settings=AriaSettings(**settings),  # type: ignore[arg-type]
        catalog=catalog,
        store=store,
        hardware=detect(),
        bitnet_server=None,
    )
