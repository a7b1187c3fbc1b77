"""The composition root: one ARIA node's catalog, store, hardware, backends and peers.

``Node.create(paths, settings)`` builds everything once; the API (``create_app(node)``)
and the CLI (``aria chat``/``aria infer``/``aria model run``/``aria route``) only call
its methods, and so does a peer's request (the node process forwards it to this
machine's API). Where a request runs is decided in one place: :meth:`Node.resolve`
builds this node's availability — installed models, its memory budget, and, when the
operator's consent contract lets prompts reach peers (``use.prompts_may_leave``), the
peers' offers ranked by the node's provider view (reputation included, peers below
``use.min_reputation`` left out) — and the router turns it into one chain whose entries say
where each candidate runs: here, on a peer, or split over peers
(:mod:`aria.router.placement`). :meth:`Node.generate` then walks that chain for real.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import replace
from pathlib import Path

import anyio

from aria.accounting import Accounting
from aria.backends import (
    Dispatcher,
    Embeddings,
    GenerationJob,
    GenerationStream,
    Lease,
    Limits,
    WorkerLaunch,
    choose_launch,
    find_bitnet_server,
    open_first,
)
from aria.backends.launch import DEFAULT_CONTEXT_CAP, Engine
from aria.catalog import (
    Capability,
    Catalog,
    CatalogEntry,
    Denylist,
    ModelId,
    WheelSource,
    load_catalog,
    load_denylist,
)
from aria.cheat import PeerAnswerCheat
from aria.config import AriaPaths, AriaSettings
from aria.consent import Contract, ContractBook, from_settings
from aria.energy import EnergyAccounts, OpenShare
from aria.errors import ModelNotFound, NodeNotRunning
from aria.hardware import HardwareSnapshot, detect, memory_budget_bytes, recommend_threads
from aria.ledger import Provenance, Recorder
from aria.p2p.control import NodeClient
from aria.p2p.inference import request_body
from aria.p2p.peer_generation import PeerRelays, open_on_peer
from aria.p2p.provider_view import ProviderView
from aria.profiles import enabled_tiers
from aria.router import (
    Availability,
    ChainEntry,
    Local,
    OnPeer,
    Preference,
    RouteRequest,
    RoutingDecision,
    RoutingTable,
    Split,
    load_routing_table,
    place_named,
    route,
)
from aria.served import Opening, Resolution, Served
from aria.split.auto import placement_of, split_lease
from aria.split.placement import Placement
from aria.store import InstalledModel, ModelStore
from aria.store.embedded import find_wheel

__all__ = ["Node", "Prepare", "Resolution", "Served"]

log = logging.getLogger(__name__)

_GIB = 1024**3
# Work a peer may re-execute to check it (spot checks), and those re-executions.
_CHECKED_ORIGINS = frozenset({"peer", "spotcheck"})

Prepare = Callable[[GenerationJob, int, bool], GenerationJob]
"""Last changes to a job once its model is chosen: ``(job, context window, stays on this
machine) -> job``. Memory-augmented chat adds the user's memories here, only when the
model runs locally (a split model sends the prompt's activations to peers)."""


class Node:
    """Everything one running ARIA node owns."""

    def __init__(
        self,
        *,
        paths: AriaPaths,
        settings: AriaSettings,
        catalog: Catalog,
        store: ModelStore,
        hardware: HardwareSnapshot,
        bitnet_server: Path | None,
        routing: RoutingTable | None = None,
        denylist: Denylist | None = None,
        engine: Engine | None = None,
        recorder: Recorder | None = None,
        energy: EnergyAccounts | None = None,
        contracts: ContractBook | None = None,
    ) -> None:
        self.paths = paths
        self.settings = settings
        self.catalog = catalog
        self.store = store
        self.hardware = hardware
        self.bitnet_server = bitnet_server
        self.engine = engine  # every launch on this engine (tests: "fake"); None: by tier
        self.routing = routing if routing is not None else load_routing_table(paths)
        self.recorder = recorder  # where receipts go (None: nothing is recorded)
        self.contracts = contracts  # the signed consent contract (docs/consent.md)
        self.cheat: PeerAnswerCheat | None = None  # tests only (aria.cheat)
        self.energy = energy if energy is not None else EnergyAccounts(cpu_model=hardware.cpu.model)
        inference = settings.inference
        budget = (
            int(inference.memory_budget_gb * _GIB)
            if inference.memory_budget_gb is not None
            else memory_budget_bytes(hardware)
        )
        self.dispatcher = Dispatcher(
            Limits(budget, inference.max_loaded, inference.idle_timeout_s),
            paths.logs,
            max_waiting=inference.max_waiting,
        )
        denied = denylist if denylist is not None else load_denylist()
        self.providers = ProviderView(paths, catalog, denied)
        self.relays = PeerRelays()

    @classmethod
    def create(
        cls,
        paths: AriaPaths,
        settings: AriaSettings,
        *,
        hardware: HardwareSnapshot | None = None,
        recorder: Recorder | None = None,
        contracts: ContractBook | None = None,
    ) -> Node:
        """Build a node from the operator's settings (detecting hardware unless given).

        Raises:
            ConfigError: an invalid profile or bitnet server path; CatalogError.
        """
        paths.ensure()
        enabled_tiers(settings.node.profile, gpu_available=False)  # validates the profile
        catalog = load_catalog()
        denylist = load_denylist()
        return cls(
            paths=paths,
            settings=settings,
            catalog=catalog,
            store=ModelStore(paths, catalog, denylist),
            hardware=hardware if hardware is not None else detect(),
            bitnet_server=find_bitnet_server(settings.inference.bitnet_server),
            denylist=denylist,
            recorder=recorder,
            contracts=contracts,
        )

    @asynccontextmanager
    async def running(self) -> AsyncIterator[Node]:
        """Supervise backends while the block runs; stop them all afterwards."""
        async with self.dispatcher.running():
            yield self

    # -- where a request runs --------------------------------------------------------------

    def contract(self) -> Contract:
        """The consent contract in force (without a signed one: the ``[consent]`` switches)."""
        if self.contracts is not None:
            return self.contracts.current().contract
        return from_settings(self.settings.consent)

    def prompts_may_leave(self) -> bool:
        """May a request's prompt reach peers at all (``use.prompts_may_leave``)?"""
        return self.contract().use.prompts_may_leave

    def uses_peers(self, placement: Preference | None = None) -> bool:
        """May prompts go to peers for this request (the contract's
        ``use.prompts_may_leave``, and not ``local-only``)?"""
        prefer = placement or self.settings.node.placement
        return prefer != "local-only" and self.prompts_may_leave()

    def available(self, placement: Preference | None = None) -> Availability:
        """What this node can run, and where: its models, its budget, and (only with
        ``uses_peers``) the peers' offers as the provider view last saw them."""
        prefer = placement or self.settings.node.placement
        installed = [m.entry for m in self.store.installed()]
        known = {entry.id: entry for entry in (*self.catalog.entries, *installed)}
        peers = offered = None
        if self.uses_peers(prefer):
            offered = self.providers.offered_entries(known)
            min_reputation = self.contract().use.min_reputation
            peers = self.providers.ranked(
                {**known, **{e.id: e for e in offered}}, min_reputation=min_reputation
            )
        return Availability.build(
            profile=self.settings.node.profile,
            gpu=self.hardware.gpu_available,
            catalog=self.catalog.entries,
            installed=installed,
            default_model=self.catalog.default_model_id,
            context_cap=self.settings.inference.context_length or DEFAULT_CONTEXT_CAP,
            peers=peers,
            offered=offered or (),
            bitnet_cpp=self.bitnet_server is not None,
            budget_bytes=self.dispatcher.limits.budget_bytes,
            prefer=prefer,
        )

    def resolve(
        self,
        model: str | None,
        job: GenerationJob | None = None,
        *,
        placement: Preference | None = None,
        distributed: bool = False,
        available: Availability | None = None,
    ) -> Resolution:
        """The chain for a request: the named model where it can run, or (``None`` /
        ``"auto"``) the SmartRouter's chain for ``job``; ``distributed`` forces the named
        model to run split over peers (``aria model run --distributed``)."""
        available = available or self.available(placement)
        if model and model != "auto":
            model_id = self.canonical_id(model)
            if distributed:
                return Resolution((ChainEntry(model_id, Split(forced=True)),), None, "requested")
            return Resolution(place_named(model_id, available), None, "requested")
        decision = route(_route_request(job), self.routing, available)
        return Resolution(
            decision.entries, decision.category.value, decision.reason, decision.notice
        )

    def canonical_id(self, model: str) -> ModelId:
        """The one spelling of a requested model (``TINY``, `` tiny`` -> ``tiny``), so
        responses, metrics labels and backends never multiply per client spelling."""
        return ModelId(self.store.canonical_id(model))

    def route(
        self, job: GenerationJob | None, placement: Preference | None = None
    ) -> RoutingDecision:
        """The SmartRouter's decision for ``job`` (``None``: an empty chat, as at start-up)."""
        return route(_route_request(job), self.routing, self.available(placement))

    def installed(self, model_id: str) -> InstalledModel:
        """The installed model ``model_id``.

        Raises:
            ModelNotFound: neither installed nor in the catalog.
            ModelNotInstalled: a catalog model that is not downloaded (says how).
        """
        if model_id not in self.catalog and not self.store.is_installed(model_id):
            raise ModelNotFound(
                f"no model {model_id!r} is installed or in the catalog; see `aria model list "
                "--all`, then run `aria model download <id>` (or `aria model import PATH`)",
                param="model",
            )
        return self.store.get(model_id)

    def window(self, entry: CatalogEntry) -> int:
        """The context window a backend of ``entry`` is loaded with (tokens)."""
        cap = self.settings.inference.context_length or DEFAULT_CONTEXT_CAP
        return min(entry.context_length, cap)

    def embedding_available(self, model_id: str) -> bool:
        """Is ``model_id`` installed, or an embedded default installable offline?"""
        return self.store.is_installed(model_id) or self._embedded_wheel_cached(model_id)

    def launch_for(self, model: InstalledModel) -> WorkerLaunch:
        """The worker options for ``model`` on this machine (tier -> backend, threads)."""
        entry = model.entry
        inference = self.settings.inference
        threads = (
            inference.threads
            or inference.measured_threads.get(entry.id)
            or recommend_threads(self.hardware.cpu, entry.params_b)
        )
        launch = choose_launch(
            entry,
            model.path,
            threads=threads,
            gpu_available=self.hardware.gpu_available,
            context_length=inference.context_length,
            bitnet_server=self.bitnet_server,
            parallel=inference.parallel,
            kv_budget_bytes=self.kv_budget_bytes(entry),
        )
        return launch if self.engine is None else replace(launch, engine=self.engine)

    def kv_budget_bytes(self, entry: CatalogEntry) -> int:
        """K/V cache memory a backend of ``entry`` may spend on parallel requests: the
        setting, or its fair share of the memory budget beyond the model's own floor."""
        inference = self.settings.inference
        if inference.kv_budget_gb is not None:
            return int(inference.kv_budget_gb * _GIB)
        limits = self.dispatcher.limits
        share = limits.budget_bytes // limits.max_loaded
        return max(0, share - int(entry.memory.ram_gb * _GIB))

    def _embedded_wheel_cached(self, model_id: str) -> bool:
        """Is ``model_id`` an embedded default (chat or embedding), not installed, with its
        wheel on disk?

        Then it can be installed offline (an unzip or a conversion); a download never
        happens here.
        """
        defaults = [self.catalog.default, self.catalog.default_embedding]
        entry = next((e for e in defaults if e and e.id.casefold() == model_id.casefold()), None)
        if entry is None or self.store.is_installed(entry.id):
            return False
        source = entry.source
        return isinstance(source, WheelSource) and (
            find_wheel(source, self.paths.cache / "wheels") is not None
        )

    async def _local(self, model_id: ModelId) -> InstalledModel:
        if self._embedded_wheel_cached(model_id):
            await anyio.to_thread.run_sync(self.store.download, model_id)
        return self.installed(model_id)

    @asynccontextmanager
    async def _lease(self, entry: ChainEntry) -> AsyncIterator[tuple[CatalogEntry, Lease]]:
        """A backend for a local or split entry (docs/split-inference.md for splits)."""
        model = await self._local(entry.model_id)
        if isinstance(entry.where, Split):
            async with split_lease(
                model,
                self.launch_for(model),
                dispatcher=self.dispatcher,
                paths=self.paths,
                use_peers=self.prompts_may_leave(),
                forced=entry.where.forced,
            ) as split:
                yield model.entry, split
            return
        ram = int(model.entry.memory.ram_gb * _GIB)
        async with self.dispatcher.lease(model.entry.id, self.launch_for(model), ram) as lease:
            yield model.entry, lease

    # -- serving ------------------------------------------------------------------------

    async def generate(
        self,
        job: GenerationJob,
        model: str | None,
        *,
        distributed: bool = False,
        placement: Preference | None = None,
        provenance: Provenance | None = None,
        prepare: Prepare | None = None,
    ) -> Served:
        """Start ``job`` on the first entry of its chain that can take it.

        The first event is awaited here, so an entry that fails before its first token
        is skipped like a missing one (availability errors only: a client error, from
        here or from a peer, is raised at once). ``placement`` overrides the node's
        ``node.placement`` preference for this request. ``prepare`` gets the last word on
        a job that runs here, knowing the model's context window and whether the job stays
        on this machine; a job sent to a peer is never prepared (memories stay here).
        The generation's receipt (``provenance``: who asked; the API by default) is
        recorded when it ends (:mod:`aria.accounting`) and hashes the job as prepared; a
        job served by a peer is recorded by the node process, which cross-signs the
        peer's receipt (:func:`aria.p2p.receipt_exchange.settle`). A greedy job served
        for a peer, or re-executed to check a peer's answer, is decoded ``isolated``
        (batch-invariant), so that the two agree whatever else either node was doing.

        Raises:
            ModelNotFound, ModelNotInstalled, BackendUnavailable, BackendCrashed,
            RoutingError (every candidate failed), ContextLengthExceeded, InvalidRequest,
            PlacementRefused (too big here and no peers can hold it), PeerError,
            ConsentRefused, RateLimited.
        """
        if provenance is not None and provenance.origin in _CHECKED_ORIGINS:
            job = replace(job, isolated=job.temperature <= 0)
        if self.uses_peers(placement):
            await self.providers.refresh()
        available = self.available(placement)
        resolution = self.resolve(
            model, job, placement=placement, distributed=distributed, available=available
        )
        self._refuse_unoffered(model, resolution, placement)

        who = provenance or Provenance()
        started_ms, started = int(time.time() * 1000), time.perf_counter()

        def accounting(
            model: CatalogEntry,
            ready: GenerationJob,
            split: Placement | None = None,
            share: OpenShare | None = None,
            *,
            here: bool = True,
        ) -> Accounting:
            return Accounting(
                recorder=self.recorder if here else None,
                provenance=who,
                job=ready,
                model_id=model.id,
                model_sha256=self.store.get(model.id).sha256 if here else "",
                split=split,
                energy=share,
                started_ms=started_ms,
                started=started,
            )

        async def open_one(entry: ChainEntry, stack: AsyncExitStack) -> Opening:
            if isinstance(entry.where, OnPeer):
                stream: GenerationStream = await self._on_peer(job, entry.model_id, entry.where)
                stack.push_async_callback(stream.aclose)
                known = available.entries.get(entry.model_id)
                model = known or self.catalog.get(entry.model_id)
                first = await stream.next_event()
                recorded_there = accounting(model, job, here=False)
                return Opening(entry, model, stream, first, None, recorded_there)
            model, lease = await stack.enter_async_context(self._lease(entry))
            split = placement_of(lease)
            ready = job if prepare is None else prepare(job, self.window(model), split is None)
            share = self.energy.open(lease.process.pid)
            generation = await lease.generate(ready)
            stack.push_async_callback(generation.aclose)
            if share is not None:
                stack.callback(share.close)  # a start that fails gives its share back
            first = await generation.next_event()
            receipt = accounting(model, ready, split, share)
            return Opening(entry, model, generation, first, split, receipt)

        opened = await open_first(resolution.entries, open_one)
        receipt = opened.value.accounting
        alter = None
        local = not isinstance(opened.value.entry.where, OnPeer)
        if self.cheat is not None and local and who.origin == "peer" and self.cheat.strikes():
            alter = self.cheat.alter
            log.warning("TEST-ONLY CHEAT: altering the answer of receipt %s", receipt.receipt_id)
        return Served(opened, resolution, alter)

    def _refuse_unoffered(
        self, model: str | None, resolution: Resolution, placement: Preference | None
    ) -> None:
        """A named model neither here nor offered by a willing peer, that peers do hold:
        say why they do not take it (consent off, busy), not only that it is missing.

        Raises:
            ConsentRefused, PeerError: the peers that hold it will not take it now.
        """
        if not model or model == "auto" or not self.uses_peers(placement):
            return
        [entry] = resolution.entries[:1]
        if isinstance(entry.where, OnPeer) or self.store.is_installed(entry.model_id):
            return
        refusal = self.providers.refusal(entry.model_id, self.contract().use.min_reputation)
        if refusal is not None:
            raise refusal

    async def _on_peer(
        self, job: GenerationJob, model_id: ModelId, where: OnPeer
    ) -> GenerationStream:
        client = NodeClient.located(self.paths)
        if client is None:
            raise NodeNotRunning(
                f"no ARIA node runs on {self.paths.home} to reach peer {where.peer_id}"
            )
        body = request_body(job, model_id)
        return await open_on_peer(client, where.peer_id, body, self.relays, self.providers.failed)

    async def embed(self, texts: list[str], model: str | None) -> tuple[ModelId, Embeddings]:
        """Embed ``texts`` with the named model, else the catalog's default embedding model
        (when installed or installable offline), else the first installed embedding model,
        else the router's chat chain (always here: embeddings feed this machine's own memory
        and search).

        Raises:
            ModelNotFound, ModelNotInstalled, BackendError, ContextLengthExceeded.
        """
        if model and model != "auto":
            candidates: tuple[ModelId, ...] = (self.canonical_id(model),)
        else:
            default = self.catalog.default_embedding
            usable = default is not None and self.embedding_available(default.id)
            preferred = [default.id] if default is not None and usable else []
            installed = self.store.installed()
            embedding = [
                m.entry.id
                for m in installed
                if Capability.EMBEDDING in m.entry.capabilities and m.entry.id not in preferred
            ]
            candidates = tuple(preferred + embedding) or self.route(None, "local-only").chain

        async def open_one(entry: ChainEntry, stack: AsyncExitStack) -> Embeddings:
            _, lease = await stack.enter_async_context(self._lease(entry))
            return await lease.embed(texts)

        opened = await open_first([ChainEntry(m, Local()) for m in candidates], open_one)
        await opened.aclose()
        return opened.model_id, opened.value


def _route_request(job: GenerationJob | None) -> RouteRequest:
    """What the router reads from a job: text, image parts, tools or JSON, sizes."""
    if job is None:
        return RouteRequest.from_text("")
    if job.messages is None:
        return RouteRequest.from_text(job.prompt or "", max_tokens=job.max_tokens)
    json_mode = job.grammar is not None and job.grammar.kind != "tools"
    return RouteRequest.from_messages(
        job.messages, tools=job.tools, json_mode=json_mode, max_tokens=job.max_tokens
    )
