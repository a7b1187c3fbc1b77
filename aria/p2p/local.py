"""This machine's side of the advert: hardware summary, shareable models, consent, load.

Reads the edges (hardware detection, the model store, psutil) once per refresh and
hands plain values to the pure advert builder. Only models whose licence may be
shared with peers (green, per ``aria.catalog.gate`` with ``Use.SHARE``) are offered:
yellow-licence models stay on this machine.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import psutil

from aria.consent import Contract
from aria.errors import AriaError
from aria.p2p.adverts import ConsentSummary, LoadReport, ModelCard, ModelOffer
from aria.p2p.hardware_summary import HardwareSummary, summarize_hardware
from aria.store import ModelStore

__all__ = ["LocalFacts", "consent_summary", "detect_hardware", "load_report", "shareable_models"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LocalFacts:
    """What peers learn of this machine's hardware: the summary the planner uses, only."""

    summary: HardwareSummary = HardwareSummary()


def detect_hardware() -> LocalFacts:
    """This machine's hardware summary (empty if detection fails)."""
    from aria.hardware import detect

    try:
        snapshot = detect()
    except AriaError as exc:
        log.warning("hardware detection failed, adverts carry no hardware: %s", exc.message)
        return LocalFacts()
    return LocalFacts(summary=summarize_hardware(snapshot))


def shareable_models(store: ModelStore) -> tuple[ModelOffer, ...]:
    """Installed, verified models whose licence allows serving them to peers (a file the
    denylist blocks is never among them), each with the card peers route by."""
    from aria.catalog import Allowed, Use, evaluate

    try:
        installed = store.installed()
    except AriaError as exc:
        log.warning("cannot read the model store, advertising no models: %s", exc.message)
        return ()
    return tuple(
        ModelOffer(
            id=m.model_id,
            sha256=m.sha256,
            licence_class=str(m.manifest.licence_class),
            card=ModelCard.of(m.entry),
        )
        for m in installed
        if isinstance(evaluate(m.manifest.licence, Use.SHARE), Allowed)
    )


def consent_summary(contract: Contract) -> ConsentSummary:
    """What peers learn of the contract in force: what it lends, and its hash."""
    lend = contract.lend
    inference, split = contract.lends("inference"), contract.lends("split")
    return ConsentSummary(
        share_inference=inference,
        share_rpc=split,
        max_remote_jobs=lend.max_jobs if inference else 0,
        max_remote_tokens=lend.max_tokens if inference else 0,
        rpc_memory_gb=lend.ram_gb if split else 0.0,
        share_library=contract.lends("library"),
        contract=contract.sha256,
        contract_version=contract.version,
    )


def load_report(active_jobs: int) -> LoadReport:
    return LoadReport(cpu_percent=psutil.cpu_percent(interval=None), active_jobs=active_jobs)
