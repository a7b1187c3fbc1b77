"""Fetching one model file from peers, in verified chunks, from several at once.

1. **Providers**: the DHT's provider records for the file's sha256, plus verified peers
   whose advert says they share a library; never one banned for this file. One stream per
   provider (py-libp2p carries one transfer per connection reliably).
2. **Manifests**: each provider offers its own signed manifest. A manifest signed by
   anyone but the provider, or one the gate refuses (licence, denylist, catalog pin),
   is refused. Honest providers agree on the chunk list (it depends only on the file), so
   offers are grouped by it and the largest group is used; other providers are not
   asked for anything, so an honest provider is never judged against a forged list.
3. **Transfer** (:class:`~aria.library.planner.SwarmPlan` decides): each chunk is
   hashed as it arrives and counts only if it matches; a provider sending a bad chunk is
   banned for this file at once and its chunks go to the others; a provider that leaves
   or stalls gives its chunks back. Verified chunks are written at their offset in the
   store's ``.part`` and logged (:class:`~aria.library.partfile.PartFile`), so a killed
   fetch resumes without fetching them again.
4. **Install**: the whole file's sha256 must be the one asked for (for a catalog id: its
   pin) before the store's atomic rename; nothing unverified is ever visible. If it is
   not, chunks lost on disk are fetched again; if every chunk matched its list, the list
   itself was forged: its signers are banned and the next round starts clean.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Awaitable, Callable
from contextlib import ExitStack
from dataclasses import dataclass, field

import trio

from aria.catalog import (
    Allowed,
    Catalog,
    CatalogEntry,
    ConvertedSource,
    Denylist,
    HuggingFaceSource,
    LocalSource,
    PeerSource,
    Use,
    WheelSource,
    canonical_licence,
    evaluate,
)
from aria.errors import AriaError, LicenceRejected, ModelNotFound, PeerError, RoutingError
from aria.library.bitmap import Bitmap, BitmapError
from aria.library.gate import fetch_refusal
from aria.library.machines import (
    Broken,
    ChunkArrived,
    ChunkMissing,
    Closed,
    Cut,
    FetchEvent,
    FetchMachine,
    Gained,
    Offered,
    ProviderFailed,
    Refused,
    Stalled,
)
from aria.library.manifest import LibraryManifest, ManifestError, open_manifest
from aria.library.net import LibraryStream, PeerNet, end_stream
from aria.library.partfile import PartFile
from aria.library.planner import Accepted, Corrupt, SourceView, SwarmPlan
from aria.library.views import FetchReport, SourceReport
from aria.p2p.spec import LibrarySpec
from aria.p2p.transport.driver import Wakeup, drive
from aria.store import Incoming, InstalledModel, ModelStore
from aria.store.localmodel import local_entry, read_gguf_info
from aria.store.manifest import HashSource
from aria.store.transfer import discard_part

__all__ = ["FetchTarget", "Fetcher", "FileBans", "file_name_of"]

log = logging.getLogger(__name__)

MAX_SOURCES = 8
_OFFER_GRACE_S = 2.0  # after the first good offer, how long the others may take
_IDLE_POLL_S = 0.5  # an idle provider looks for chunks given back this often
_REPORT_S = 0.5
_ROUNDS = 3
_BAN_S = 3600.0


@dataclass(frozen=True)
class FetchTarget:
    """What to fetch: ``entry`` for a catalog id (None: a peer's green import)."""

    model_id: str
    sha256: str
    entry: CatalogEntry | None


def file_name_of(entry: CatalogEntry) -> str:
    """The name a catalog model's file has in the store."""
    match entry.source:
        case HuggingFaceSource(file=name):
            return name.rsplit("/", 1)[-1]
        case WheelSource(member=name):
            return name.rsplit("/", 1)[-1]
        case ConvertedSource() as source:
            return source.file_name
        case LocalSource(path=path):
            return path.rsplit("/", 1)[-1]
        case PeerSource():  # an entry built from peers' adverts, for routing only
            raise ModelNotFound(f"{entry.id} is only offered by peers: it has no file of its own")


class FileBans:
    """Providers banned per file (sha256), for an hour."""

    def __init__(self) -> None:
        self._until: dict[str, dict[str, float]] = {}

    def ban(self, sha256: str, peer: str, now: float) -> None:
        self._until.setdefault(sha256, {})[peer] = now + _BAN_S

    def banned(self, sha256: str, now: float) -> set[str]:
        held = self._until.get(sha256, {})
        for peer in [p for p, until in held.items() if until <= now]:
            del held[peer]
        return set(held)


@dataclass
class _Provider:
    peer: str
    machine: FetchMachine
    wakeup: Wakeup = field(default_factory=Wakeup)
    manifest: LibraryManifest | None = None
    have: Bitmap | None = None
    state: str = "opening"
    reason: str = ""
    order: int = 0  # when its offer came (ties between groups go to the earliest)


class _Round:
    """One attempt at the file with one set of providers."""

    def __init__(self, peers: list[str], target: FetchTarget, spec: LibrarySpec) -> None:
        self.providers = {p: _Provider(p, FetchMachine(target.sha256, spec)) for p in peers}
        self.chosen = trio.Event()
        self.first_offer = trio.Event()  # or every provider answered
        self.resolved = trio.Event()
        self.finished = trio.Event()
        self.group: list[str] = []
        self.manifest: LibraryManifest | None = None
        self.plan: SwarmPlan | None = None
        self.part: PartFile | None = None
        self.incoming: Incoming | None = None
        self.offers = 0
        self.resumed = 0
        self.stuck_since: float | None = None
        self.scope: trio.CancelScope | None = None
        self.failure: AriaError | None = None

    def fail(self, error: AriaError) -> None:
        """End the round with ``error`` (the first one wins)."""
        if self.failure is None:
            self.failure = error
        if self.scope is not None:
            self.scope.cancel()

    def resolve(self, provider: _Provider) -> None:
        """``provider`` answered (an offer, a refusal) or failed."""
        if provider.state == "offered":
            self.first_offer.set()
        if all(p.state != "opening" for p in self.providers.values()):
            self.resolved.set()
            self.first_offer.set()  # nothing more to wait for


class Fetcher:
    """Fetches files into one store for one node (see the module docstring)."""

    def __init__(
        self,
        net: PeerNet,
        spec: LibrarySpec,
        store: ModelStore,
        catalog: Catalog,
        denylist: Denylist,
        bans: FileBans,
    ) -> None:
        self._net, self._spec, self._store = net, spec, store
        self._catalog, self._denylist, self._bans = catalog, denylist, bans

    async def fetch(
        self,
        target: FetchTarget,
        report: Callable[[FetchReport], None],
        on_part: Callable[[PartFile | None], None] = lambda _part: None,
    ) -> tuple[InstalledModel, LibraryManifest]:
        """Fetch ``target`` into the store; ``report`` gets progress, ``on_part`` the part
        being filled (so the node can serve its verified chunks) and None when it is gone.

        Raises:
            RoutingError: no peer shares the file.
            PeerError: every provider refused, failed, or sent a forged chunk list; the
                verified chunks are kept for the next attempt.
            LicenceRejected: a peer's import declares a licence that may not be shared.
            StoreBusy, StoreError, InsufficientDiskSpace: from the store.
        """
        for attempt in range(_ROUNDS):
            peers = await self._candidates(target.sha256)
            if not peers and attempt:
                raise PeerError(
                    f"the providers of {target.model_id} offered a chunk list that does not "
                    "make its file; they are banned for it and no other peer shares it"
                )
            if not peers:
                raise RoutingError(f"no peer on the network shares {target.model_id}")
            rnd = _Round(peers, target, self._spec)
            try:
                with ExitStack() as stack:
                    result = await self._run_round(rnd, target, stack, report, on_part)
                    if result is not None:
                        return result
            finally:
                on_part(None)
                if rnd.part is not None:
                    rnd.part.close()
        raise PeerError(f"no provider of {target.model_id} offered a chunk list that holds up")

    async def _candidates(self, sha256: str) -> list[str]:
        net = self._net
        found = await net.find_providers(sha256)
        banned = self._bans.banned(sha256, net.now())
        peers = list(dict.fromkeys([*found, *net.sharing_peers()]))
        return [p for p in peers if p != net.peer_id and p not in banned][:MAX_SOURCES]

    # -- one round --------------------------------------------------------------------------

    async def _run_round(
        self,
        rnd: _Round,
        target: FetchTarget,
        stack: ExitStack,
        report: Callable[[FetchReport], None],
        on_part: Callable[[PartFile | None], None],
    ) -> tuple[InstalledModel, LibraryManifest] | None:
        started = time.monotonic()
        async with trio.open_nursery() as nursery:
            rnd.scope = nursery.cancel_scope
            for provider in rnd.providers.values():
                nursery.start_soon(self._provider_task, rnd, provider, target)
            try:
                await self._transfer(rnd, target, stack, report, on_part, started)
            except AriaError as exc:  # raised after the nursery, as itself (not in a group)
                rnd.fail(exc)
        if rnd.failure is not None:
            raise rnd.failure
        return await self._complete(rnd, target, report, started)

    async def _transfer(
        self,
        rnd: _Round,
        target: FetchTarget,
        stack: ExitStack,
        report: Callable[[FetchReport], None],
        on_part: Callable[[PartFile | None], None],
        started: float,
    ) -> None:
        await self._choose(rnd, target, stack)
        if rnd.plan is None:
            raise self._no_offer(rnd, target)
        assert rnd.part is not None and rnd.manifest is not None
        on_part(rnd.part)
        report(self._report("start", rnd, target, started))
        while not rnd.finished.is_set():
            self._check_finished(rnd)
            with trio.move_on_after(_REPORT_S):
                await rnd.finished.wait()
            report(self._report("progress", rnd, target, started))
        self._finish(rnd)

    async def _choose(self, rnd: _Round, target: FetchTarget, stack: ExitStack) -> None:
        """Wait for the offers, pick the largest group agreeing on one chunk list, open the
        part for it; then let every provider go on (to fetch, or to close)."""
        try:
            with trio.move_on_after(self._spec.offer_timeout_s + 1):
                await rnd.first_offer.wait()
                with trio.move_on_after(_OFFER_GRACE_S):
                    await rnd.resolved.wait()
            offered = [p for p in rnd.providers.values() if p.state == "offered"]
            if not offered:
                return
            groups: dict[str, list[_Provider]] = {}
            for provider in sorted(offered, key=lambda p: p.order):
                assert provider.manifest is not None
                groups.setdefault(provider.manifest.chunks_root, []).append(provider)
            group = max(groups.values(), key=lambda g: (len(g), -g[0].order))
            manifest = group[0].manifest
            assert manifest is not None
            name = manifest.file_name if target.entry is None else file_name_of(target.entry)
            rnd.incoming = stack.enter_context(
                self._store.incoming(target.model_id, name, action="fetching from peers")
            )
            part = await trio.to_thread.run_sync(PartFile.open, rnd.incoming.part, manifest)
            stack.callback(part.close)
            rnd.part, rnd.manifest = part, manifest
            rnd.resumed = len(part.verified)
            lengths = [manifest.span(i)[1] for i in range(len(manifest.chunks))]
            start = random.randrange(len(lengths))
            rnd.plan = SwarmPlan(lengths, manifest.chunks, part.verified.copy(), start=start)
            for provider in group:
                rnd.plan.add_source(provider.peer, provider.have)
            rnd.group = [p.peer for p in group]
        finally:
            rnd.chosen.set()

    def _no_offer(self, rnd: _Round, target: FetchTarget) -> PeerError:
        reasons = "; ".join(f"{p.peer}: {p.reason or p.state}" for p in rnd.providers.values())
        return PeerError(f"no peer offered {target.model_id} ({reasons})")

    # -- one provider -------------------------------------------------------------------------

    async def _provider_task(self, rnd: _Round, provider: _Provider, target: FetchTarget) -> None:
        net = self._net
        stream: LibraryStream | None = None
        try:
            stream = await net.open_stream(provider.peer, self._spec.offer_timeout_s)
        except PeerError as exc:
            provider.state, provider.reason = "unreachable", exc.message
            rnd.resolve(provider)
            return
        machine = provider.machine
        try:
            await drive(
                stream,
                machine,
                net.now,
                self._events(rnd, provider, target),
                wakeup=provider.wakeup,
            )
        except AriaError as exc:  # this machine's disk or store failed: the round ends
            rnd.fail(exc)
        finally:
            if provider.state == "opening":
                provider.state = "failed"
            rnd.resolve(provider)
            if rnd.plan is not None and provider.peer in rnd.group:
                requeued = rnd.plan.drop_source(provider.peer)
                if requeued:
                    self._wake_all(rnd)
            self._check_finished(rnd)
            await end_stream(stream, clean=machine.done and not machine.failed)

    def _events(
        self, rnd: _Round, provider: _Provider, target: FetchTarget
    ) -> Callable[[list[FetchEvent]], Awaitable[None]]:
        async def on_events(events: list[FetchEvent]) -> None:
            for event in events:
                await self._on_event(rnd, provider, target, event)
            self._assign(rnd, provider)
            self._check_finished(rnd)

        return on_events

    async def _on_event(
        self, rnd: _Round, provider: _Provider, target: FetchTarget, event: FetchEvent
    ) -> None:
        net = self._net
        if isinstance(event, Offered):
            await self._on_offer(rnd, provider, target, event)
        elif isinstance(event, ChunkArrived):
            await self._on_chunk(rnd, provider, target, event)
        elif isinstance(event, ChunkMissing):
            if rnd.plan is not None:
                rnd.plan.missing_at(provider.peer, event.index)
        elif isinstance(event, Gained):
            if rnd.plan is not None:
                rnd.plan.gained(provider.peer, event.indices)
        elif isinstance(event, Refused | ProviderFailed):
            provider.state, provider.reason = "refused", f"{event.reason}: {event.message}"
            log.info("%s did not serve %s: %s", provider.peer, target.model_id, provider.reason)
        elif isinstance(event, Broken):
            provider.state, provider.reason = "failed", f"{event.violation.value}: {event.detail}"
            net.penalize(provider.peer, event.violation.value)
        elif isinstance(event, Cut | Stalled):
            provider.state, provider.reason = "failed", event.detail
            if isinstance(event, Stalled):
                net.penalize(provider.peer, "timeout")
        elif isinstance(event, Closed):
            provider.state = "closed" if provider.state != "banned" else provider.state

    async def _on_offer(
        self, rnd: _Round, provider: _Provider, target: FetchTarget, event: Offered
    ) -> None:
        net = self._net
        try:
            manifest = open_manifest(event.manifest, self._spec)
            if manifest.peer_id != provider.peer:
                raise ManifestError("peer_mismatch", "the manifest was signed by another peer")
            have = None if not event.have else Bitmap.from_hex(event.have, len(manifest.chunks))
        except (ManifestError, BitmapError) as exc:
            provider.state, provider.reason = "failed", f"refused its manifest: {exc}"
            log.info("refused the manifest of %s for %s: %s", provider.peer, target.model_id, exc)
            net.penalize(provider.peer, "false_manifest")
            provider.machine.close(net.now())
            rnd.resolve(provider)
            return
        refusal = fetch_refusal(
            manifest,
            model_id=target.model_id,
            sha256=target.sha256,
            catalog=self._catalog,
            denylist=self._denylist,
        )
        if refusal is not None:
            provider.state = "failed"
            provider.reason = f"refused its manifest: {refusal.message}"
            log.info("refused the manifest of %s: %s", provider.peer, refusal.message)
            net.penalize(provider.peer, "false_offer")
            provider.machine.close(net.now())
            rnd.resolve(provider)
            return
        provider.manifest, provider.have, provider.state = manifest, have, "offered"
        rnd.offers += 1
        provider.order = rnd.offers
        rnd.resolve(provider)
        await rnd.chosen.wait()
        if rnd.plan is None or provider.peer not in rnd.group:
            provider.state = "unused"
            provider.machine.close(net.now())
            return
        provider.state = "active"
        provider.machine.accept(rnd.plan.lengths, net.now())

    async def _on_chunk(
        self, rnd: _Round, provider: _Provider, target: FetchTarget, event: ChunkArrived
    ) -> None:
        plan, part, net = rnd.plan, rnd.part, self._net
        assert plan is not None and part is not None
        if provider.state == "banned":  # the rest of what was read with its bad chunk
            return
        verdict = plan.arrived(provider.peer, event.index, event.sha256, net.now())
        if isinstance(verdict, Corrupt):
            provider.state = "banned"
            provider.reason = f"chunk {event.index} did not match its hash"
            log.warning(
                "banned %s from %s: chunk %d did not match its hash",
                provider.peer,
                target.model_id,
                event.index,
            )
            self._bans.ban(target.sha256, provider.peer, net.now())
            net.penalize(provider.peer, "bad_chunk")
            provider.machine.abandon()
            self._wake_all(rnd)
            return
        if isinstance(verdict, Accepted):
            await trio.to_thread.run_sync(part.write, event.index, event.data)
            for other in verdict.cancel:
                rnd.providers[other].machine.cancel(event.index)
                rnd.providers[other].wakeup()
        self._check_finished(rnd)

    # -- scheduling -------------------------------------------------------------------------

    def _assign(self, rnd: _Round, provider: _Provider) -> None:
        plan = rnd.plan
        if plan is None or provider.state != "active" or provider.machine.done:
            return
        now = self._net.now()
        if rnd.finished.is_set():
            provider.machine.close(now)
            return
        for index in plan.assign(provider.peer, now):
            provider.machine.request(index, now)
        idle = not provider.machine.outstanding
        provider.machine.wake_at(now + _IDLE_POLL_S if idle else None)

    def _wake_all(self, rnd: _Round) -> None:
        for provider in rnd.providers.values():
            provider.wakeup()

    def _check_finished(self, rnd: _Round) -> None:
        """Finish when the file is complete, nobody is left, or what is missing has been
        out of every provider's reach too long (providers still fetching may gain it)."""
        plan = rnd.plan
        if plan is None or rnd.finished.is_set():
            return
        now = self._net.now()
        if not plan.stuck:
            rnd.stuck_since = None
        elif rnd.stuck_since is None:
            rnd.stuck_since = now
        stuck_too_long = (
            rnd.stuck_since is not None and now - rnd.stuck_since >= self._spec.stall_timeout_s
        )
        if plan.complete or stuck_too_long or not plan.active_sources:
            self._finish(rnd)

    def _finish(self, rnd: _Round) -> None:
        rnd.finished.set()
        now = self._net.now()
        for provider in rnd.providers.values():
            provider.machine.close(now)
            provider.wakeup()

    # -- the end ----------------------------------------------------------------------------

    async def _complete(
        self,
        rnd: _Round,
        target: FetchTarget,
        report: Callable[[FetchReport], None],
        started: float,
    ) -> tuple[InstalledModel, LibraryManifest] | None:
        plan, part, manifest = rnd.plan, rnd.part, rnd.manifest
        assert plan is not None and part is not None and manifest is not None
        if not plan.complete:
            raise PeerError(
                f"the providers of {target.model_id} stopped before the file was complete "
                f"({self._why(rnd)}); {len(part.verified)} of {len(manifest.chunks)} chunks "
                "are kept: run the command again to resume"
            )
        whole = await trio.to_thread.run_sync(part.whole_sha256)
        if whole != target.sha256:
            bad = await trio.to_thread.run_sync(part.recheck)
            if bad:
                log.warning(
                    "%d chunks of %s were lost; fetching them again", len(bad), target.model_id
                )
                return None
            self._forged(rnd, target)
            part.discard()
            return None
        part.close()
        assert rnd.incoming is not None
        model = await trio.to_thread.run_sync(self._install, rnd.incoming, manifest, target, whole)
        report(self._report("done", rnd, target, started, path=str(model.path)))
        return model, manifest

    def _install(
        self, incoming: Incoming, manifest: LibraryManifest, target: FetchTarget, whole: str
    ) -> InstalledModel:
        if target.entry is not None:
            return self._store.install_part(
                target.entry,
                incoming,
                actual=whole,
                expected=target.sha256,
                hash_source=HashSource.CATALOG,
            )
        info = read_gguf_info(incoming.part)
        declared = info.licence or "unknown"
        shareable = isinstance(evaluate(declared, Use.SHARE), Allowed)
        if not shareable or canonical_licence(declared) != canonical_licence(manifest.licence):
            discard_part(incoming.part)
            raise LicenceRejected(
                f"{target.model_id} from peers declares the licence {declared!r} in its file, "
                f"not {manifest.licence!r} as offered; it was deleted and is never shared"
            )
        entry = local_entry(
            info,
            model_id=target.model_id,
            path=incoming.final,
            size_bytes=manifest.size,
            sha256=whole,
        ).model_copy(
            update={
                "source": LocalSource(path=f"peers:{manifest.peer_id}"),
                "notes": f"fetched from peers (published by {manifest.peer_id})",
            }
        )
        return self._store.install_part(
            entry,
            incoming,
            actual=whole,
            expected=target.sha256,
            hash_source=HashSource.PEERS,
            imported=True,
        )

    def _forged(self, rnd: _Round, target: FetchTarget) -> None:
        now = self._net.now()
        for peer in rnd.group:
            log.warning(
                "banned %s from %s: its chunk list does not make the file", peer, target.model_id
            )
            self._bans.ban(target.sha256, peer, now)
            self._net.penalize(peer, "false_manifest")

    def _why(self, rnd: _Round) -> str:
        return "; ".join(f"{p.peer}: {p.reason or p.state}" for p in rnd.providers.values())

    def _report(
        self,
        event: str,
        rnd: _Round,
        target: FetchTarget,
        started: float,
        path: str | None = None,
    ) -> FetchReport:
        plan, manifest = rnd.plan, rnd.manifest
        assert plan is not None and manifest is not None
        return FetchReport.model_validate(
            {
                "event": event,
                "model_id": target.model_id,
                "sha256": target.sha256,
                "size_bytes": manifest.size,
                "chunks": len(manifest.chunks),
                "chunks_done": len(plan.done),
                "chunks_resumed": rnd.resumed,
                "bytes_done": plan.done_bytes(),
                "elapsed_s": round(time.monotonic() - started, 3),
                "sources": [_source(s) for s in plan.sources()],
                "path": path,
            }
        )


def _source(view: SourceView) -> SourceReport:
    return SourceReport(
        peer_id=view.peer,
        bytes=view.bytes,
        chunks=view.chunks,
        rate_bps=view.rate_bps,
        state=view.state,
    )
