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

from aria.config import AriaSettings
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


def consent_summary(settings: AriaSettings) -> ConsentSummary:
    consent = settings.consent
    return ConsentSummary(
        share_inference=consent.share_inference,
        share_rpc=consent.share_rpc,
        max_remote_jobs=consent.max_remote_jobs if consent.share_inference else 0,
        max_remote_tokens=consent.max_remote_tokens if consent.share_inference else 0,
        rpc_memory_gb=consent.rpc_memory_gb if consent.share_rpc else 0.0,
    )


def load_report(active_jobs: int) -> LoadReport:
    return LoadReport(cpu_percent=psutil.cpu_percent(interval=None), active_jobs=active_jobs)
