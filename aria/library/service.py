"""The library inside the node process: its stream protocol, control ops and provider records.

The node runs it as one of its services (:class:`aria.p2p.services.NodeService`):

* ``/aria/library/1.0.0`` streams are served by :class:`~aria.library.serve.Server`, from
  the published files (:class:`~aria.library.shelf.Shelf`) and the verified chunks of
  files being fetched;
* while the consent contract lends ``library``, one DHT provider record per served file (keyed
  by its sha256) is announced, again whenever new peers arrive and every ``refresh_s``;
* control ops for the CLI: ``library_publish``, ``library_unpublish``, ``library_list``,
  ``library_status``, ``library_find`` and the streaming ``library_fetch``;
* a consent change reaches it live (:meth:`LibraryService.consent_changed`): uploads the
  new terms refuse end at once and the new bandwidth limits apply.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import AsyncGenerator, Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import trio

from aria.catalog import Catalog, Denylist
from aria.config import AriaPaths
from aria.errors import AriaError, InvalidRequest, PeerError, RoutingError
from aria.library.bitmap import Bitmap
from aria.library.fetch import Fetcher, FetchTarget, FileBans
from aria.library.gate import catalog_entry, raise_refusal, serve_refusal
from aria.library.limits import upload_cap_mbps
from aria.library.machines import FetchMachine, Offered, Refused
from aria.library.manifest import seal_manifest
from aria.library.net import NodeNet, PeerNet, end_stream
from aria.library.partfile import PartFile
from aria.library.serve import Server, Source
from aria.library.shelf import Shared, Shelf
from aria.library.views import FetchReport, LibraryProvider, LibraryStatus
from aria.p2p.keys import NodeKey
from aria.p2p.records import SignedEnvelope
from aria.p2p.spec import LibrarySpec
from aria.p2p.transport.driver import drive
from aria.store import ModelStore

if TYPE_CHECKING:
    from aria.p2p.context import PeerContext
    from aria.p2p.transport.dht import AriaDht

__all__ = ["LibraryService", "library_service"]

log = logging.getLogger(__name__)

_PEERS_POLL_S = 5.0  # how often new peers are looked for (they get our provider records)
_FIND_TIMEOUT_S = 8.0
_MAX_MODEL_ID = 128

Handler = Callable[[dict[str, Any]], Awaitable[Any]]


def library_service(ctx: PeerContext, dht: Callable[[], AriaDht | None]) -> LibraryService:
    """The node's library (a :data:`aria.p2p.services.ServiceFactory`)."""
    return LibraryService(
        NodeNet(ctx, dht),
        paths=ctx.paths,
        key=ctx.key,
        spec=ctx.spec.library,
        catalog=ctx.catalog,
        denylist=ctx.denylist,
    )


@dataclass(frozen=True)
class _Published:
    """A published file as the server sees it."""

    shared: Shared

    @property
    def model_id(self) -> str:
        return self.shared.model.model_id

    @property
    def sha256(self) -> str:
        return self.shared.model.sha256

    @property
    def envelope(self) -> SignedEnvelope:
        return self.shared.envelope

    @property
    def chunks(self) -> int:
        return len(self.shared.manifest.chunks)

    def held(self) -> Bitmap | None:
        return None

    def length(self, index: int) -> int:
        return self.shared.manifest.span(index)[1]

    def read(self, index: int) -> bytes:
        offset, length = self.shared.manifest.span(index)
        fd = os.open(self.shared.model.path, os.O_RDONLY)
        try:
            return os.pread(fd, length, offset)
        finally:
            os.close(fd)


@dataclass(frozen=True)
class _Partial:
    """A file being fetched: its verified chunks are served under this node's manifest."""

    part: PartFile
    envelope: SignedEnvelope

    @property
    def model_id(self) -> str:
        return self.part.manifest.model_id

    @property
    def sha256(self) -> str:
        return self.part.manifest.sha256

    @property
    def chunks(self) -> int:
        return len(self.part.manifest.chunks)

    def held(self) -> Bitmap | None:
        return self.part.verified

    def length(self, index: int) -> int:
        return self.part.manifest.span(index)[1]

    def read(self, index: int) -> bytes:
        return self.part.read(index)


class LibraryService:
    """One node's library (see the module docstring)."""

    def __init__(
        self,
        net: PeerNet,
        *,
        paths: AriaPaths,
        key: NodeKey,
        spec: LibrarySpec,
        catalog: Catalog,
        denylist: Denylist,
    ) -> None:
        self._net, self._key, self._spec = net, key, spec
        self._catalog, self._denylist = catalog, denylist
        self._store = ModelStore(paths, catalog, denylist, lock_timeout_s=0.0)
        self.shelf = Shelf(self._store, key, spec, catalog, denylist, net.now)
        self._bans = FileBans()
        self._fetcher = Fetcher(net, spec, self._store, catalog, denylist, self._bans)
        self.server = Server(net, spec, self._source)
        self._published: dict[str, _Published] = {}
        self._partials: dict[str, _Partial] = {}
        self._fetching: dict[str, FetchReport] = {}
        self._provide_soon = trio.Event()
        self._nursery: trio.Nursery | None = None

    # -- what the node wires ----------------------------------------------------------------

    def stream_handlers(self) -> Mapping[str, Callable[[Any], Awaitable[None]]]:
        return {self._spec.protocol: self.server.handle}

    def control_ops(self) -> Mapping[str, Handler]:
        return {
            "library_publish": self._publish_op,
            "library_unpublish": self._unpublish_op,
            "library_list": self._list_op,
            "library_status": self._status_op,
            "library_find": self._find_op,
            "library_fetch": self._fetch_op,
        }

    async def run(self, *, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        """Live as long as the node: keep the provider records of served files fresh."""
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            try:
                await self._refresh()
            except AriaError as exc:  # an unreadable store must not stop the node
                log.warning("the library shares nothing for now: %s", exc.message)
            task_status.started()
            await self._announce_loop()

    async def consent_changed(self) -> None:
        """The operator changed consent: apply it to uploads now, announce if now sharing."""
        self.server.apply_terms()
        if self._net.contract().lends("library"):
            self._provide_soon.set()

    # -- provider records -------------------------------------------------------------------

    async def _announce_loop(self) -> None:
        announced_to: set[str] = set()
        last = -math.inf
        while True:
            with trio.move_on_after(_PEERS_POLL_S):
                await self._provide_soon.wait()
            soon, self._provide_soon = self._provide_soon.is_set(), trio.Event()
            peers = set(self._net.verified_peers())
            due = soon or trio.current_time() - last >= self._spec.refresh_s
            if self._net.contract().lends("library") and (due or not peers <= announced_to):
                await self._provide_all()
                announced_to, last = peers, trio.current_time()

    async def _provide_all(self) -> None:
        shas = set(self._published) | set(self._partials)
        async with trio.open_nursery() as nursery:
            for sha in shas:
                nursery.start_soon(self._provide, sha)
        if shas:
            log.info("announced %d library file(s) as provider", len(shas))

    async def _provide(self, sha256: str) -> None:
        with trio.move_on_after(60):
            try:
                await self._net.provide(sha256)
            except Exception as exc:  # a DHT failure must not stop the library
                log.debug("providing %s failed: %s", sha256[:12], exc)

    async def _refresh(self) -> None:
        shared = await trio.to_thread.run_sync(self.shelf.shared)
        self._published = {s.model.sha256: _Published(s) for s in shared}
        self._provide_soon.set()

    def _source(self, sha256: str) -> Source | None:
        return self._published.get(sha256) or self._partials.get(sha256)

    # -- control ops ------------------------------------------------------------------------

    async def _publish_op(self, args: dict[str, Any]) -> dict[str, Any]:
        model_id = _model_arg(args)
        shared = await trio.to_thread.run_sync(self.shelf.publish, model_id)
        await self._refresh()
        return {
            "model_id": shared.model.model_id,
            "sha256": shared.model.sha256,
            "chunks": len(shared.manifest.chunks),
            "published": True,
            "sharing": self._net.contract().lends("library"),
        }

    async def _unpublish_op(self, args: dict[str, Any]) -> dict[str, Any]:
        model_id = _model_arg(args)
        changed = await trio.to_thread.run_sync(self.shelf.unpublish, model_id)
        await self._refresh()
        return {"model_id": model_id, "published": False, "changed": changed}

    async def _list_op(self, _args: dict[str, Any]) -> list[dict[str, Any]]:
        entries = await trio.to_thread.run_sync(self.shelf.entries)
        return [e.model_dump(mode="json") for e in entries]

    async def _status_op(self, _args: dict[str, Any]) -> dict[str, Any]:
        return self.status().model_dump(mode="json")

    def status(self) -> LibraryStatus:
        consent = self._net.consent()
        totals = self.server.totals
        return LibraryStatus(
            sharing=self._net.contract().lends("library"),
            published=len(self._published),
            uploads_active=self.server.serving,
            max_uploads=consent.library_max_uploads,
            upload_mbps=upload_cap_mbps(consent, self._net.contract()),
            served_transfers=totals.transfers,
            served_bytes=totals.bytes,
            fetching=list(self._fetching.values()),
        )

    async def _find_op(self, args: dict[str, Any]) -> list[dict[str, Any]]:
        """``library_find {model_id}``: who answers for the file, asked directly."""
        target = await self._target(args)
        peers = await self._net.find_providers(target.sha256)
        peers = list(dict.fromkeys([*peers, *self._net.sharing_peers()]))
        found: dict[str, LibraryProvider] = {}

        async def ask(peer: str) -> None:
            found[peer] = await self._probe(peer, target.sha256)

        async with trio.open_nursery() as nursery:
            for peer in peers:
                nursery.start_soon(ask, peer)
        return [found[p].model_dump(mode="json") for p in peers]

    async def _probe(self, peer: str, sha256: str) -> LibraryProvider:
        """Ask ``peer`` for the file's manifest, then close: what would it serve?"""
        try:
            stream = await self._net.open_stream(peer, _FIND_TIMEOUT_S)
        except PeerError as exc:
            return LibraryProvider(peer_id=peer, state="unreachable", reason=exc.message)
        machine = FetchMachine(sha256, self._spec)
        answer: list[LibraryProvider] = []

        async def on_events(events: list[Any]) -> None:
            for event in events:
                if isinstance(event, Offered):
                    held = bin(int(event.have, 16)).count("1") if event.have else None
                    state: Literal["complete", "partial"] = (
                        "complete" if held is None else "partial"
                    )
                    answer.append(LibraryProvider(peer_id=peer, state=state, chunks_held=held))
                elif isinstance(event, Refused):
                    answer.append(
                        LibraryProvider(peer_id=peer, state="refused", reason=event.reason)
                    )
            if answer or machine.done:
                machine.close(self._net.now())

        with trio.move_on_after(_FIND_TIMEOUT_S):
            await drive(stream, machine, self._net.now, on_events)
        await end_stream(stream, clean=machine.done and not machine.failed)
        if answer:
            return answer[0]
        return LibraryProvider(peer_id=peer, state="unreachable", reason="no answer")

    async def _fetch_op(self, args: dict[str, Any]) -> AsyncGenerator[dict[str, Any], None]:
        """``library_fetch {model_id, sha256?}``: streams ``FetchReport`` items."""
        target = await self._target(args)
        return self._fetch_stream(target)

    async def _fetch_stream(self, target: FetchTarget) -> AsyncGenerator[dict[str, Any], None]:
        assert self._nursery is not None
        send, receive = trio.open_memory_channel[FetchReport](math.inf)
        scope = trio.CancelScope()
        failure: list[BaseException] = []

        def report(item: FetchReport) -> None:
            self._fetching[target.sha256] = item
            send.send_nowait(item)

        async def run() -> None:
            with scope, send:
                try:
                    model, manifest = await self._fetcher.fetch(
                        target, report, lambda part: self._set_partial(target.sha256, part)
                    )
                    await trio.to_thread.run_sync(self.shelf.record_fetched, model, manifest)
                    await self._refresh()
                except Exception as exc:
                    failure.append(exc)
                finally:
                    self._fetching.pop(target.sha256, None)

        self._nursery.start_soon(run)
        try:
            async with receive:
                async for item in receive:
                    yield item.model_dump(mode="json")
            if failure:
                raise failure[0]
        finally:
            scope.cancel()

    def _set_partial(self, sha256: str, part: PartFile | None) -> None:
        """A fetch's part appeared (its verified chunks are served) or is gone."""
        if part is None:
            self._partials.pop(sha256, None)
            return
        manifest = part.manifest.model_copy(
            update={"peer_id": self._key.peer_id, "issued_at": self._net.now()}
        )
        self._partials[part.manifest.sha256] = _Partial(part, seal_manifest(manifest, self._key))
        self._provide_soon.set()

    async def _target(self, args: dict[str, Any]) -> FetchTarget:
        """The file a fetch or find is about.

        Raises:
            InvalidRequest: a bad id, or several files offered under one id (name one).
            IntegrityError, LicenceRejected, DeniedFile: a catalog file peers may not serve.
            RoutingError: no peer offers a model by that name.
        """
        model_id = _model_arg(args)
        wanted = args.get("sha256")
        if wanted is not None and (not isinstance(wanted, str) or len(wanted) != 64):
            raise InvalidRequest("sha256 must be 64 hex digits")
        entry = catalog_entry(self._catalog, model_id)
        if entry is not None:
            sha = entry.sha256 or ""
            raise_refusal(
                serve_refusal(
                    model_id=entry.id,
                    sha256=sha,
                    licence=entry.licence,
                    catalog=self._catalog,
                    denylist=self._denylist,
                )
            )
            return FetchTarget(entry.id, sha, entry)
        if wanted is not None:
            return FetchTarget(model_id, wanted.lower(), None)
        offered = {sha for _peer, sha in await self._net.offers(model_id)}
        if not offered:
            raise RoutingError(f"no peer on the network offers a model named {model_id}")
        if len(offered) > 1:
            listed = ", ".join(sorted(offered))
            raise InvalidRequest(
                f"peers offer different files as {model_id} ({listed}); name one with --sha256"
            )
        return FetchTarget(model_id, offered.pop(), None)


def _model_arg(args: dict[str, Any]) -> str:
    model_id = args.get("model_id")
    if not isinstance(model_id, str) or not 0 < len(model_id) <= _MAX_MODEL_ID:
        raise InvalidRequest(f"a model id of 1 to {_MAX_MODEL_ID} characters is needed")
    return model_id.strip()
