"""The composition root: one ARIA node's catalog, store, hardware and backends.

``Node.create(paths, settings)`` builds everything once; the API (``create_app(node)``)
and the CLI (``aria chat``/``aria infer``) only call its methods. Which model serves a
request is decided by :meth:`Node.resolve` (the seam where the SmartRouter plugs
in); :meth:`Node.generate` then walks the resulting fallback chain for real.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING

import anyio

from aria.accounting import Accounting
from aria.backends import (
    Attempt,
    Dispatcher,
    DoneEvent,
    Embeddings,
    Generation,
    GenerationJob,
    Lease,
    Limits,
    Opened,
    TokenEvent,
    WorkerLaunch,
    choose_launch,
    find_bitnet_server,
    open_first,
)
from aria.backends.launch import DEFAULT_CONTEXT_CAP
from aria.catalog import (
    Capability,
    Catalog,
    CatalogEntry,
    ModelId,
    WheelSource,
    load_catalog,
    load_denylist,
)
from aria.cheat import PeerAnswerCheat
from aria.config import AriaPaths, AriaSettings
from aria.consent import Contract, ContractBook, from_settings
from aria.energy import EnergyAccounts, OpenShare
from aria.errors import ModelNotFound
from aria.hardware import HardwareSnapshot, detect, memory_budget_bytes, recommend_threads
from aria.ledger import Provenance, Recorder
from aria.profiles import enabled_tiers
from aria.router import (
    Availability,
    RouteRequest,
    RoutingDecision,
    RoutingTable,
    load_routing_table,
    route,
)
from aria.store import InstalledModel, ModelStore
from aria.store.embedded import find_wheel

if TYPE_CHECKING:
    from aria.split import Placement

__all__ = ["Node", "Prepare", "Resolution", "Served"]

log = logging.getLogger(__name__)

_GIB = 1024**3

# What opening a generation gives: the model, the generation, its first event, where it
# was split (if it was), its energy share and the job as the worker received it.
_Opening = tuple[
    CatalogEntry,
    Generation,
    TokenEvent | DoneEvent,
    "Placement | None",
    OpenShare | None,
    GenerationJob,
]

Prepare = Callable[[GenerationJob, int, bool], GenerationJob]
"""Last changes to a job once its model is chosen: ``(job, context window, stays on this
machine) -> job``. Memory-augmented chat adds the user's memories here, only when the
model runs locally (a split model sends the prompt's activations to peers)."""


@dataclass(frozen=True)
class Resolution:
    """The models that may serve a request, best first, and why."""

    candidates: tuple[ModelId, ...]
    category: str | None
    reason: str
    notice: str | None = None


class Served:
    """A generation in progress on the model that took it; close it when done."""

    def __init__(
        self,
        opened: Opened[_Opening],
        resolution: Resolution,
        accounting: Accounting,
        alter: Callable[[str], str] | None = None,
    ) -> None:
        self._opened = opened
        self.entry, self._generation, self._first, self.split, *_ = opened.value
        self.resolution = resolution
        self.accounting = accounting  # the receipt, recorded when the generation ends
        self._alter = alter  # aria.cheat (tests only): the first token is altered

    @property
    def model_id(self) -> ModelId:
        return self._opened.model_id

    @property
    def skipped(self) -> tuple[Attempt, ...]:
        return self._opened.skipped

    def route_header(self) -> str:
        """``x-aria-route``: category, the model chosen, and each fallback taken."""
        parts = [f"model={self.model_id}", f"category={self.resolution.category or 'none'}"]
        if self.skipped:
            parts.append("fallbacks=" + ",".join(f"{a.model_id}:{a.code}" for a in self.skipped))
        if self.split is not None:
            parts.append(f"split={len(self.split.shares)} peer(s)")
        parts.append(f"reason={self.resolution.reason}")
        return "; ".join(parts)

    def split_header(self) -> str | None:
        """``x-aria-split``: where the layers ran, when the model was split over peers."""
        from aria.split.auto import describe_split

        return None if self.split is None else describe_split(self.split)

    async def events(self) -> AsyncIterator[TokenEvent | DoneEvent]:
        """Tokens as the worker generates them, then one :class:`DoneEvent` (yielded once
        its receipt is recorded)."""
        event = self._first
        while True:
            if self._alter is not None and isinstance(event, TokenEvent):
                event, self._alter = TokenEvent(self._alter(event.text)), None
            self.accounting.saw(event)
            if isinstance(event, DoneEvent):
                await self.accounting.finish(event)
            yield event
            if self._generation.finished:
                return
            event = await self._generation.next_event()

    async def cancel(self) -> DoneEvent | None:
        """Stop generating now (the backend stays leased until :meth:`aclose`)."""
        done = await self._generation.cancel()
        await self.accounting.finish(done)
        return done

    async def aclose(self) -> None:
        """Cancel the generation if unfinished, record it, release the backend (shielded)."""
        try:
            await self.cancel()
        finally:
            await self._opened.aclose()

    async def __aenter__(self) -> Served:
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()


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
        return cls(
            paths=paths,
            settings=settings,
            catalog=catalog,
            store=ModelStore(paths, catalog, load_denylist()),
            hardware=hardware if hardware is not None else detect(),
            bitnet_server=find_bitnet_server(settings.inference.bitnet_server),
            recorder=recorder,
            contracts=contracts,
        )

    @asynccontextmanager
    async def running(self) -> AsyncIterator[Node]:
        """Supervise backends while the block runs; stop them all afterwards."""
        async with self.dispatcher.running():
            yield self

    # -- which model ------------------------------------------------------------------

    def contract(self) -> Contract:
        """The consent contract in force (without a signed one: the ``[consent]`` switches)."""
        if self.contracts is not None:
            return self.contracts.current().contract
        return from_settings(self.settings.consent)

    def prompts_may_leave(self) -> bool:
        """May a request's prompt reach peers at all (``use.prompts_may_leave``)?"""
        return self.contract().use.prompts_may_leave

    def resolve(self, model: str | None, job: GenerationJob | None = None) -> Resolution:
        """The candidates for a request: the named model, or (``None``/``"auto"``) the
        SmartRouter's fallback chain for ``job``."""
        if model and model != "auto":
            return Resolution((self.canonical_id(model),), None, "requested")
        decision = self.route(job)
        return Resolution(decision.chain, decision.category.value, decision.reason, decision.notice)

    def canonical_id(self, model: str) -> ModelId:
        """The one spelling of a requested model (``TINY``, `` tiny`` -> ``tiny``), so
        responses, metrics labels and backends never multiply per client spelling."""
        return ModelId(self.store.canonical_id(model))

    def route(self, job: GenerationJob | None) -> RoutingDecision:
        """The SmartRouter's decision for ``job`` (``None``: an empty chat, as at start-up)."""
        available = Availability.build(
            profile=self.settings.node.profile,
            gpu=self.hardware.gpu_available,
            catalog=self.catalog.entries,
            installed=[m.entry for m in self.store.installed()],
            default_model=self.catalog.default_model_id,
            context_cap=self.settings.inference.context_length or DEFAULT_CONTEXT_CAP,
            bitnet_cpp=self.bitnet_server is not None,
        )
        return route(_route_request(job), self.routing, available)

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
        return choose_launch(
            entry,
            model.path,
            threads=threads,
            gpu_available=self.hardware.gpu_available,
            context_length=inference.context_length,
            bitnet_server=self.bitnet_server,
            parallel=inference.parallel,
            kv_budget_bytes=self.kv_budget_bytes(entry),
        )

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

    @asynccontextmanager
    async def _lease(
        self, model_id: ModelId, *, distributed: bool = False
    ) -> AsyncIterator[tuple[CatalogEntry, Lease]]:
        from aria.split.auto import needs_split, split_lease

        if self._embedded_wheel_cached(model_id):
            await anyio.to_thread.run_sync(self.store.download, model_id)
        model = self.installed(model_id)
        if distributed or needs_split(self, model):  # over peers (docs/split-inference.md)
            async with split_lease(self, model, forced=distributed) as split:
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
        provenance: Provenance | None = None,
        prepare: Prepare | None = None,
    ) -> Served:
        """Start ``job`` on the first model of the chain that can take it.

        The first event is awaited here, so a backend that fails before its first
        token is skipped like a missing one. A model that does not fit this node's
        memory budget is split over peers that lend compute; ``distributed`` forces that.
        The generation's receipt (``provenance``: who asked; the API by default) is
        recorded when it ends (:mod:`aria.accounting`). ``prepare`` gets the last word on
        the job, knowing the model's context window and whether the job stays on this
        machine; the receipt hashes the job as prepared.

        Raises:
            ModelNotFound, ModelNotInstalled, BackendUnavailable, BackendCrashed,
            RoutingError (every candidate failed), ContextLengthExceeded, InvalidRequest,
            PlacementRefused (too big here and no peers can hold it).
        """
        from aria.split.auto import placement_of

        resolution = self.resolve(model, job)
        started_ms, started = int(time.time() * 1000), time.perf_counter()

        async def open_one(model_id: ModelId, stack: AsyncExitStack) -> _Opening:
            entry, lease = await stack.enter_async_context(
                self._lease(model_id, distributed=distributed)
            )
            placement = placement_of(lease)
            ready = job if prepare is None else prepare(job, self.window(entry), placement is None)
            share = self.energy.open(lease.process.pid)
            generation = await lease.generate(ready)
            stack.push_async_callback(generation.aclose)
            if share is not None:
                stack.callback(share.close)  # a start that fails gives its share back
            first = await generation.next_event()
            return entry, generation, first, placement, share, ready

        opened = await open_first(resolution.candidates, open_one)
        _, _, _, split, share, ready = opened.value
        accounting = Accounting(
            recorder=self.recorder,
            provenance=provenance or Provenance(),
            job=ready,
            model_id=opened.model_id,
            model_sha256=self.store.get(opened.model_id).sha256,
            split=split,
            energy=share,
            started_ms=started_ms,
            started=started,
        )
        cheat = self.cheat
        alter = None
        if cheat is not None and accounting.provenance.origin == "peer" and cheat.strikes():
            alter = cheat.alter
            log.warning("TEST-ONLY CHEAT: altering the answer of receipt %s", accounting.receipt_id)
        return Served(opened, resolution, accounting, alter)

    async def embed(self, texts: list[str], model: str | None) -> tuple[ModelId, Embeddings]:
        """Embed ``texts`` with the named model, else the catalog's default embedding model
        (when installed or installable offline), else the first installed embedding model,
        else the router's chat chain.

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
            candidates = tuple(preferred + embedding) or self.route(None).chain

        async def open_one(model_id: ModelId, stack: AsyncExitStack) -> Embeddings:
            _, lease = await stack.enter_async_context(self._lease(model_id))
            return await lease.embed(texts)

        opened = await open_first(candidates, open_one)
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
