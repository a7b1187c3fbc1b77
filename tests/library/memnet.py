"""Library services wired over in-memory streams (no libp2p): real stores, real files.

Each :class:`MemNode` is a real :class:`~aria.library.service.LibraryService` on its own
ARIA home; :class:`Network` gives each one a :class:`~aria.library.net.PeerNet` whose
streams are trio memory channels and whose "DHT" is a dict. Faults are injected where a
real peer would cause them: a file corrupted on a provider's disk, a provider that
vanishes (its streams reset), a provider that forges what it offers.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import trio

from aria.catalog import Catalog, Denylist, load_catalog, load_denylist
from aria.config import AriaPaths, ConsentSettings
from aria.consent import Contract, from_settings
from aria.convert.synthetic import write_llama_gguf
from aria.errors import PeerError
from aria.library.manifest import LibraryManifest
from aria.library.net import LibraryStream
from aria.library.service import LibraryService
from aria.p2p.keys import NodeKey
from aria.p2p.records import SignedEnvelope
from aria.p2p.spec import LibrarySpec, load_spec
from aria.store import InstalledModel, ModelStore

SPEC: LibrarySpec = dataclasses.replace(
    load_spec().library,
    chunk_size=65_536,
    piece_size=20_000,
    offer_timeout_s=5.0,
    stall_timeout_s=5.0,
)


class MemoryStream:
    """One end of an in-memory stream; ``peer`` is who is at the other end."""

    def __init__(
        self,
        peer: str,
        inbox: trio.MemoryReceiveChannel[bytes],
        outbox: trio.MemorySendChannel[bytes],
    ) -> None:
        self.peer = peer
        self._inbox, self._outbox = inbox, outbox
        self._buffer = bytearray()

    async def read(self, n: int | None = None) -> bytes:
        if not self._buffer:
            try:
                self._buffer += await self._inbox.receive()
            except (trio.EndOfChannel, trio.ClosedResourceError):
                return b""
        take = len(self._buffer) if n is None or n < 0 else n
        data = bytes(self._buffer[:take])
        del self._buffer[:take]
        return data

    async def write(self, data: bytes) -> None:
        await self._outbox.send(bytes(data))

    async def close(self) -> None:
        await self._outbox.aclose()

    async def reset(self) -> None:
        await self._outbox.aclose()
        await self._inbox.aclose()


def stream_pair(a: str, b: str) -> tuple[MemoryStream, MemoryStream]:
    """(a's end, whose peer is b; b's end, whose peer is a)."""
    a_to_b, b_from_a = trio.open_memory_channel[bytes](16)
    b_to_a, a_from_b = trio.open_memory_channel[bytes](16)
    return MemoryStream(b, a_from_b, a_to_b), MemoryStream(a, b_from_a, b_to_a)


@dataclass
class MemNode:
    name: str
    home: Path
    key: NodeKey
    network: Network
    consent: ConsentSettings
    catalog: Catalog
    denylist: Denylist
    contract: Contract = field(init=False)
    service: LibraryService = field(init=False)
    penalties: list[tuple[str, str]] = field(default_factory=list)
    streams: list[MemoryStream] = field(default_factory=list)
    down: bool = False

    def __post_init__(self) -> None:
        self.contract = from_settings(self.consent)  # as a node's first contract
        self.service = _service(self, self.denylist)

    @property
    def peer_id(self) -> str:
        return self.key.peer_id

    @property
    def store(self) -> ModelStore:
        return ModelStore(AriaPaths(self.home), self.catalog, self.denylist)

    async def kill(self) -> None:
        """The node vanishes: every stream it has open is reset."""
        self.down = True
        for stream in self.streams:
            await stream.reset()


def _service(node: MemNode, denylist: Denylist) -> LibraryService:
    return LibraryService(
        _Net(node),
        paths=AriaPaths(node.home),
        key=node.key,
        spec=SPEC,
        catalog=node.catalog,
        denylist=denylist,
    )


class _Net:
    """:class:`~aria.library.net.PeerNet` over the in-memory network."""

    def __init__(self, node: MemNode) -> None:
        self._node = node

    @property
    def peer_id(self) -> str:
        return self._node.key.peer_id

    def now(self) -> float:
        return time.time()

    def consent(self) -> ConsentSettings:
        return self._node.consent

    def contract(self) -> Contract:
        return self._node.contract

    def reputation(self, peer: str) -> float:
        return 0.5  # never spot-checked

    async def open_stream(self, peer: str, timeout_s: float) -> LibraryStream:
        network = self._node.network
        target = network.nodes.get(peer)
        if target is None or target.down or self._node.down:
            raise PeerError(f"cannot open a library stream to peer {peer}: unreachable")
        mine, theirs = stream_pair(self.peer_id, peer)
        self._node.streams.append(mine)
        target.streams.append(theirs)
        network.nursery.start_soon(target.service.server.handle, theirs)
        return mine

    async def admit(self, stream: Any) -> str | None:
        return str(stream.peer)

    def penalize(self, peer: str, kind: str) -> None:
        self._node.penalties.append((peer, kind))

    async def provide(self, sha256: str) -> None:
        self._node.network.providers.setdefault(sha256, set()).add(self.peer_id)

    async def find_providers(self, sha256: str) -> list[str]:
        held = self._node.network.providers.get(sha256, set())
        return sorted(p for p in held if p != self.peer_id)

    def sharing_peers(self) -> list[str]:
        return [
            p
            for p, n in self._node.network.nodes.items()
            if p != self.peer_id and n.contract.lends("library") and not n.down
        ]

    def verified_peers(self) -> list[str]:
        return [p for p in self._node.network.nodes if p != self.peer_id]

    async def offers(self, model_id: str) -> list[tuple[str, str]]:
        out = []
        for peer, node in self._node.network.nodes.items():
            if peer == self.peer_id or node.down:
                continue
            for entry in await trio.to_thread.run_sync(node.service.shelf.entries):
                if entry.model_id == model_id and entry.shareable:
                    out.append((peer, entry.sha256))
        return out


@dataclass
class Network:
    root: Path
    nursery: trio.Nursery
    catalog: Catalog = field(default_factory=load_catalog)
    denylist: Denylist = field(default_factory=load_denylist)
    nodes: dict[str, MemNode] = field(default_factory=dict)
    providers: dict[str, set[str]] = field(default_factory=dict)

    async def add(
        self,
        name: str,
        *,
        sharing: bool = True,
        denylist: Denylist | None = None,
        **consent: Any,
    ) -> MemNode:
        node = MemNode(
            name,
            self.root / name,
            NodeKey.generate(),
            self,
            ConsentSettings(share_library=sharing, **consent),
            self.catalog,
            denylist or self.denylist,
        )
        self.nodes[node.peer_id] = node
        await self.nursery.start(node.service.run)
        return node

    async def restart(self, node: MemNode, *, denylist: Denylist) -> None:
        """The node starts again (same home and key), e.g. after a release's new denylist."""
        node.denylist = denylist
        node.service = _service(node, denylist)
        await self.nursery.start(node.service.run)


def model_file(folder: Path, *, seed: int = 3, license: str = "apache-2.0") -> Path:
    """A generated GGUF of about 1.6 MB (25 chunks of 64 KiB)."""
    return write_llama_gguf(
        folder / f"tiny-{seed}-{license}.gguf", n_embd=256, seed=seed, license=license
    )


def install(node: MemNode, source: Path, model_id: str, **kwargs: Any) -> InstalledModel:
    return node.store.import_file(source, model_id=model_id, **kwargs)


@dataclass(frozen=True)
class ForgedOffer:
    """What a dishonest provider serves under ``sha256``: any envelope, any file's bytes
    (a :class:`~aria.library.serve.Source`)."""

    model_id: str
    sha256: str
    envelope: SignedEnvelope
    manifest: LibraryManifest
    path: Path

    @property
    def chunks(self) -> int:
        return len(self.manifest.chunks)

    def held(self) -> None:
        return None

    def length(self, index: int) -> int:
        return self.manifest.span(index)[1]

    def read(self, index: int) -> bytes:
        offset, length = self.manifest.span(index)
        with self.path.open("rb") as handle:
            handle.seek(offset)
            return handle.read(length)


def forge(node: MemNode, offer: ForgedOffer) -> None:
    """Make ``node`` serve ``offer`` for its sha256, as a modified node would."""
    honest = node.service.server._sources
    node.service.server._sources = lambda sha: offer if sha == offer.sha256 else honest(sha)


async def set_consent(
    node: MemNode, contract: Contract | None = None, *, library: bool | None = None, **limits: Any
) -> None:
    """The operator changes consent live: a new contract (``aria node consent set``; with
    ``library``, ``aria node share --library on|off``), and/or ``[consent]`` limits."""
    node.consent = node.consent.model_copy(update=limits)
    contract = contract or node.contract
    if library is not None:
        tasks: tuple[str, ...] = tuple(t for t in contract.lend.tasks if t != "library")
        tasks += ("library",) if library else ()
        contract = contract.model_copy(
            update={"lend": contract.lend.model_copy(update={"tasks": tasks})}
        )
    node.contract = contract
    await node.service.consent_changed()


async def publish(node: MemNode, model_id: str) -> None:
    await node.service.control_ops()["library_publish"]({"model_id": model_id})


async def fetch(
    node: MemNode,
    model_id: str,
    on_item: Callable[[dict[str, Any]], None] | None = None,
    **args: Any,
) -> list[dict[str, Any]]:
    """Run ``library_fetch`` as the CLI does; return its reports."""
    items = []
    stream = await node.service.control_ops()["library_fetch"]({"model_id": model_id, **args})
    async for item in stream:
        items.append(item)
        if on_item is not None:
            on_item(item)
    return items
