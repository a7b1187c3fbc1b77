"""``route()``: which model serves a request, and what to try when it cannot (pure).

1. **Category.** Structural rules first, in precedence order: an image part -> vision;
   tools or a JSON response format -> tool_use; a prompt of at least
   ``limits.long_context_tokens`` -> long_context. Otherwise the classifier reads the text.
2. **Candidates.** The routing table's row for (category, profile), then the installed
   models the row does not name (imports, in tier order), filtered to models the node
   knows, of an enabled tier, that chat, that see images when the request has one, and
   whose window (capped like the backends cap it) holds the prompt plus the answer.
3. **Known limit.** Native 1-bit models are unreliable at tool calls and JSON: a request
   with tools or a JSON format never goes to one while any non-1-bit model is reachable.
4. **Chain.** Each candidate becomes one entry per place it can run
   (:mod:`aria.router.placement`): installed here (``local``, or ``split`` over peers
   when its memory floor exceeds this node's budget), and on each peer that offers it,
   best peer first. With the ``local-first`` preference (the default) every local entry
   comes first, then the peers, then the splits; ``peers-first`` puts peers first;
   ``local-only`` keeps this machine's models alone. When nothing is reachable, the
   catalog candidates are listed anyway (the executor skips each with "not installed"
   and reports it). The embedded default model always ends the chain as the last
   resort, here.

A named model gets the same treatment without the routing table
(:func:`place_named`): here if installed, then on the peers offering it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Final

from aria.catalog.entries import Capability, CatalogEntry, ModelId, Tier
from aria.catalog.runnable import runnability
from aria.errors import ConfigError
from aria.profiles import enabled_tiers, native_1bit_only
from aria.router.categories import Category
from aria.router.placement import ChainEntry, Local, OnPeer, Preference, Split
from aria.router.request import RouteRequest
from aria.router.table import RoutingTable

__all__ = ["Availability", "RoutingDecision", "place_named", "route"]

_NOT_CHAT: Final = frozenset({Capability.EMBEDDING, Capability.COMPLETION})
_GIB: Final = 1024**3
# How many candidates a reason names (the chain itself lists them all).
_NAMED: Final = 3


@dataclass(frozen=True)
class Availability:
    """What this node can run right now, and where, as the router needs to know it.

    ``peers`` maps each model peers offer to the peers offering it, best first (empty
    unless the operator lets prompts reach peers); ``budget_bytes`` is this node's
    memory budget (an installed model whose floor exceeds it runs split over peers).
    """

    profile: str
    tiers: tuple[Tier, ...]
    entries: Mapping[ModelId, CatalogEntry]
    installed: frozenset[ModelId]
    default_model: ModelId
    gpu: bool = False
    context_cap: int | None = None
    peers: Mapping[ModelId, tuple[str, ...]] = field(default_factory=dict)
    bitnet_cpp: bool = False
    one_bit_only: bool = False
    budget_bytes: int | None = None
    prefer: Preference = "local-first"

    @classmethod
    def build(
        cls,
        *,
        profile: str,
        gpu: bool,
        catalog: Iterable[CatalogEntry],
        installed: Iterable[CatalogEntry],
        default_model: ModelId,
        context_cap: int | None = None,
        peers: Mapping[ModelId, Iterable[str]] | None = None,
        offered: Iterable[CatalogEntry] = (),
        bitnet_cpp: bool = False,
        budget_bytes: int | None = None,
        prefer: Preference = "local-first",
    ) -> Availability:
        """Availability from the catalog, the store's installed entries (imports too) and
        the entries of models only peers hold (``offered``, from their adverts).

        Raises:
            ConfigError: ``profile`` is not a known preset.
        """
        installed = tuple(installed)
        entries = {entry.id: entry for entry in (*offered, *catalog, *installed)}
        ranked = {model: tuple(ids) for model, ids in (peers or {}).items()}
        return cls(
            profile=profile,
            tiers=enabled_tiers(profile, gpu_available=gpu),
            entries=MappingProxyType(entries),
            installed=frozenset(entry.id for entry in installed),
            default_model=default_model,
            gpu=gpu,
            context_cap=context_cap,
            peers=MappingProxyType({m: ids for m, ids in ranked.items() if ids}),
            bitnet_cpp=bitnet_cpp,
            one_bit_only=native_1bit_only(profile),
            budget_bytes=budget_bytes,
            prefer=prefer,
        )

    def __post_init__(self) -> None:
        if self.default_model not in self.entries:
            raise ConfigError(f"the default model {self.default_model!r} has no catalog entry")

    @property
    def peer_models(self) -> frozenset[ModelId]:
        return frozenset(self.peers)

    def window(self, entry: CatalogEntry) -> int:
        """The context window a backend will actually open for ``entry``."""
        if self.context_cap is None:
            return entry.context_length
        return min(entry.context_length, self.context_cap)

    def reachable(self, model_id: ModelId) -> bool:
        return model_id in self.installed or model_id in self.peers

    def fits_here(self, model_id: ModelId) -> bool:
        """Does the model's memory floor fit this node's budget (unknown: yes)?"""
        entry = self.entries.get(model_id)
        if self.budget_bytes is None or entry is None:
            return True
        return entry.memory.ram_gb * _GIB <= self.budget_bytes

    def entries_for(self, models: Iterable[ModelId]) -> tuple[ChainEntry, ...]:
        """Where each of ``models`` (best first) can run, in the order to try (see the
        module doc); a model reachable nowhere is listed here (the executor says why)."""
        local: list[ChainEntry] = []
        remote: list[ChainEntry] = []
        split: list[ChainEntry] = []
        for model in models:
            if model in self.installed or model not in self.peers:
                here = self.fits_here(model) or self.prefer == "local-only"
                (local if here else split).append(ChainEntry(model, Local() if here else Split()))
            remote.extend(ChainEntry(model, OnPeer(peer)) for peer in self.peers.get(model, ()))
        if self.prefer == "local-only":
            return tuple(local)
        first, then = (remote, local) if self.prefer == "peers-first" else (local, remote)
        return (*first, *then, *split)


@dataclass(frozen=True)
class RoutingDecision:
    """The entries to try, best first, and a one-line explanation."""

    entries: tuple[ChainEntry, ...]
    tier: Tier
    category: Category
    confidence: float
    reason: str
    notice: str | None = None
    scores: Mapping[Category, float] = field(default_factory=dict)

    @property
    def model_id(self) -> ModelId:
        """The model of the first entry."""
        return self.entries[0].model_id

    @property
    def chain(self) -> tuple[ModelId, ...]:
        """The models of the chain, in order, each once."""
        return tuple(dict.fromkeys(entry.model_id for entry in self.entries))

    @property
    def fallbacks(self) -> tuple[ModelId, ...]:
        return self.chain[1:]

    def labels(self) -> dict[str, str]:
        """Metric labels of this decision (``aria_route_decisions{category,model,tier}``)."""
        return {"category": self.category.value, "model": self.model_id, "tier": self.tier.value}


def route(request: RouteRequest, table: RoutingTable, available: Availability) -> RoutingDecision:
    """Decide which model serves ``request`` and what to fall back on (see module doc)."""
    text = table.classifier.classify(request.text)
    category, confidence = _structural(request, table) or (text.category, text.confidence)
    need = request.prompt_tokens + (request.max_tokens or table.limits.answer_reserve_tokens)
    row = tuple(dict.fromkeys(table.models_for(category, available.profile)))
    default = available.default_model
    listed = [m for m in row if _fits(m, category, need, available)]
    # Installed models the row does not name (imports, operator picks) still beat a download.
    unlisted = [
        m
        for m in _reachable_by_tier(available)
        if m not in row and m != default and _fits(m, category, need, available)
    ]
    candidates = listed + unlisted
    one_bit_note = None
    if request.needs_structured_output:
        candidates, one_bit_note = _demote_1bit(candidates, available)
    reachable = sorted(
        (m for m in candidates if available.reachable(m)),
        key=lambda m: m not in available.installed,
    )
    chain = [*available.entries_for(m for m in (reachable or candidates) if m != default)]
    chain.append(ChainEntry(default, Local()))
    why = _reason(category, available, row, reachable, candidates, need)
    if one_bit_note:
        why += "; " + one_bit_note
    notice = None
    if not reachable:
        notice = f"no installed model suits {category.value} under profile {available.profile}"
        if candidates:
            notice += f" (download {candidates[0]} for it)"
        notice += f"; the embedded default {default} answers as the last resort"
    return RoutingDecision(
        entries=tuple(chain),
        tier=available.entries[chain[0].model_id].tier,
        category=category,
        confidence=round(confidence, 4),
        reason=why,
        notice=notice,
        scores=text.scores,
    )


def place_named(model_id: ModelId, available: Availability) -> tuple[ChainEntry, ...]:
    """Where a model the request names can run: here (if installed, or if nobody offers
    it: the executor then says how to install it), then on the peers that offer it."""
    return available.entries_for([model_id]) or (ChainEntry(model_id, Local()),)


def _structural(request: RouteRequest, table: RoutingTable) -> tuple[Category, float] | None:
    if request.has_image:
        return Category.VISION, 1.0
    if request.needs_structured_output:
        return Category.TOOL_USE, 1.0
    if request.prompt_tokens >= table.limits.long_context_tokens:
        return Category.LONG_CONTEXT, 1.0
    return None


def _fits(model_id: ModelId, category: Category, need: int, available: Availability) -> bool:
    entry = available.entries.get(model_id)
    if entry is None or entry.tier not in available.tiers:
        return False
    if available.one_bit_only and not entry.native_1bit:
        return False  # the 1-bit profile: the embedded default is its only other model
    only_peers = model_id in available.peers and model_id not in available.installed
    if not only_peers and not runnability(entry, bitnet_cpp=available.bitnet_cpp).ok:
        return False  # no engine here can load it: never route to it or suggest it
    caps = entry.capabilities
    if Capability.CHAT not in caps and caps & _NOT_CHAT:
        return False
    if category is Category.VISION and Capability.VISION not in caps:
        return False
    return available.window(entry) >= need


def _demote_1bit(
    fitting: list[ModelId], available: Availability
) -> tuple[list[ModelId], str | None]:
    """Keep native 1-bit models away from tools/JSON (known limit, see module doc).

    They are dropped while any non-1-bit model is reachable (the default model counts);
    otherwise they stay, after the non-1-bit candidates, and the reason says so.
    """
    one_bit = [m for m in fitting if available.entries[m].native_1bit]
    if not one_bit:
        return fitting, None
    others = [m for m in fitting if m not in one_bit]
    default = available.default_model
    alternatives = [m for m in (*others, default) if not available.entries[m].native_1bit]
    if any(available.reachable(m) for m in alternatives):
        return others, "native 1-bit models skipped for tools/JSON (known limit)"
    return others + one_bit, "only native 1-bit models can serve; tool calls may be unreliable"


def _reachable_by_tier(available: Availability) -> list[ModelId]:
    """Installed and peer-offered models of the enabled tiers, in tier preference order."""
    reachable = available.installed | available.peer_models
    known = [available.entries[m] for m in reachable if m in available.entries]
    usable = [e for e in known if e.tier in available.tiers]
    usable.sort(key=lambda e: (available.tiers.index(e.tier), e.id))
    return [e.id for e in usable]


def _reason(
    category: Category,
    available: Availability,
    row: tuple[ModelId, ...],
    reachable: list[ModelId],
    candidates: list[ModelId],
    need: int,
) -> str:
    where = f"{category.value} row for profile {available.profile}"
    if available.one_bit_only:
        where += " (native 1-bit models only)"
    if reachable:
        first = reachable[0]
        source = "installed" if first in available.installed else "offered by a peer"
        if first in row:
            return f"{first} is the first {source} model of the {where}"
        return f"no installed model of the {where} fits; {first} is {source} and fits"
    default = available.default_model
    if candidates:
        names = ", ".join(candidates[:_NAMED])
        if len(candidates) > _NAMED:
            names += f" and {len(candidates) - _NAMED} more"
        return (
            f"no installed model of the {where} fits; trying catalog candidates {names} "
            f"(not installed), then the embedded default {default} as the last resort"
        )
    if not row:
        return f"the {where} is empty; the embedded default {default} is the last resort"
    return (
        f"no model of the {where} fits (enabled tiers "
        f"{', '.join(t.value for t in available.tiers)}, about {need} tokens needed"
        f"{', vision required' if category is Category.VISION else ''}); "
        f"the embedded default {default} is the last resort"
    )
