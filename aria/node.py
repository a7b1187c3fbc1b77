"""The composition root: one ARIA node's catalog, store, hardware and backends.

``Node.create(paths, settings)`` builds everything once; the API (``create_app(node)``)
and the CLI (``aria chat``/``aria infer``) only call its methods. Which model serves a
request is decided by :meth:`Node.resolve` (the seam where the SmartRouter plugs
in); :meth:`Node.generate` then walks the resulting fallback chain for real.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

import anyio

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
from aria.config import AriaPaths, AriaSettings
from aria.errors import ModelNotFound
from aria.hardware import HardwareSnapshot, detect, memory_budget_bytes, recommend_threads
from aria.profiles import enabled_tiers
from aria.router import (
    Availability,
    RouteRequest,
    RoutingDecision,
    RoutingTable,
    load_routing_table,
    route,
)
from aria.split.auto import describe_split, placement_of, split_lease
from aria.split.placement import Placement
from aria.store import InstalledModel, ModelStore
from aria.store.embedded import find_wheel

__all__ = ["Node", "Resolution", "Served"]

_GIB = 1024**3


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
        opened: Opened[tuple[CatalogEntry, Generation, TokenEvent | DoneEvent, Placement | None]],
        resolution: Resolution,
    ) -> None:
        self._opened = opened
        self.entry, self._generation, self._first, self.split = opened.value
        self.resolution = resolution

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
        return None if self.split is None else describe_split(self.split)

    async def events(self) -> AsyncIterator[TokenEvent | DoneEvent]:
        """Tokens as the worker generates them, then one :class:`DoneEvent`."""
        yield self._first
        while not self._generation.finished:
            yield await self._generation.next_event()

    async def cancel(self) -> DoneEvent | None:
        """Stop generating now (the backend stays leased until :meth:`aclose`)."""
        return await self._generation.cancel()

    async def aclose(self) -> None:
        """Cancel the generation if unfinished and release the backend (shielded)."""
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
    ) -> None:
        self.paths = paths
        self.settings = settings
        self.catalog = catalog
        self.store = store
        self.hardware = hardware
        self.bitnet_server = bitnet_server
        self.routing = routing if routing is not None else load_routing_table(paths)
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
        cls, paths: AriaPaths, settings: AriaSettings, *, hardware: HardwareSnapshot | None = None
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
        )

    @asynccontextmanager
    async def running(self) -> AsyncIterator[Node]:
        """Supervise backends while the block runs; stop them all afterwards."""
        async with self.dispatcher.running():
            yield self

    # -- which model ------------------------------------------------------------------

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
        )

    def _embedded_wheel_cached(self, model_id: str) -> bool:
        """Is ``model_id`` the embedded default, not installed, with its wheel on disk?

        Then it can be installed offline (an unzip); a download never happens here.
        """
        default = self.catalog.default
        if model_id.casefold() != default.id.casefold() or self.store.is_installed(default.id):
            return False
        source = default.source
        return isinstance(source, WheelSource) and (
            find_wheel(source, self.paths.cache / "wheels") is not None
        )

    @asynccontextmanager
    async def _lease(
        self, model_id: ModelId, *, distributed: bool = False
    ) -> AsyncIterator[tuple[CatalogEntry, Lease]]:
        if self._embedded_wheel_cached(model_id):
            await anyio.to_thread.run_sync(self.store.ensure_embedded)
        model = self.installed(model_id)
        ram = int(model.entry.memory.ram_gb * _GIB)
        if distributed or ram > self.dispatcher.limits.budget_bytes:  # docs/split-inference.md
            async with split_lease(
                model,
                self.launch_for(model),
                dispatcher=self.dispatcher,
                paths=self.paths,
                use_peers=self.settings.consent.use_peers,
                forced=distributed,
            ) as split:
                yield model.entry, split
            return
        async with self.dispatcher.lease(model.entry.id, self.launch_for(model), ram) as lease:
            yield model.entry, lease

    # -- serving ------------------------------------------------------------------------

    async def generate(
        self, job: GenerationJob, model: str | None, *, distributed: bool = False
    ) -> Served:
        """Start ``job`` on the first model of the chain that can take it.

        The first event is awaited here, so a backend that fails before its first
        token is skipped like a missing one. A model that does not fit this node's
        memory budget is split over peers that lend compute; ``distributed`` forces that.

        Raises:
            ModelNotFound, ModelNotInstalled, BackendUnavailable, BackendCrashed,
            RoutingError (every candidate failed), ContextLengthExceeded, InvalidRequest,
            PlacementRefused (too big here and no peers can hold it).
        """
        resolution = self.resolve(model, job)

        async def open_one(
            model_id: ModelId, stack: AsyncExitStack
        ) -> tuple[CatalogEntry, Generation, TokenEvent | DoneEvent, Placement | None]:
            entry, lease = await stack.enter_async_context(
                self._lease(model_id, distributed=distributed)
            )
            generation = await lease.generate(job)
            stack.push_async_callback(generation.aclose)
            return entry, generation, await generation.next_event(), placement_of(lease)

        return Served(await open_first(resolution.candidates, open_one), resolution)

    async def embed(self, texts: list[str], model: str | None) -> tuple[ModelId, Embeddings]:
        """Embed ``texts`` with the named model, or the first installed embedding model.

        Raises:
            ModelNotFound, ModelNotInstalled, BackendError, ContextLengthExceeded.
        """
        if model and model != "auto":
            candidates: tuple[ModelId, ...] = (self.canonical_id(model),)
        else:
            installed = self.store.installed()
            embedding = [
                m.entry.id for m in installed if Capability.EMBEDDING in m.entry.capabilities
            ]
            candidates = tuple(embedding) or self.route(None).chain

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
