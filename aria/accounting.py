"""What one generation cost and produced, recorded once when it ends.

:class:`Accounting` rides along with a served generation (:class:`aria.served.Served`):
it sees each event, and at the end — done, cancelled by the client, or failed — it
closes the request's energy share and hands one receipt (model and file hash, where it
ran, tokens, timing, energy, hashes of prompt and output, who it was for) to the
node's :class:`~aria.ledger.recorder.Recorder`, in a worker thread so the fsync never
blocks the event loop. The receipt is committed before the caller sees the end of the
generation, so whatever a client was told has been recorded.

A failure to record is logged and never fails the request that was served.
"""

from __future__ import annotations

import json
import logging
import time
from typing import TYPE_CHECKING

import anyio

from aria.backends import DoneEvent, GenerationJob, TokenEvent, ToolCallDelta
from aria.energy import EnergyReading, OpenShare
from aria.errors import LedgerError
from aria.ledger import (
    Energy,
    ModelRef,
    Provenance,
    Receipt,
    Recorder,
    RunPlace,
    SignedEntry,
    json_digest,
    sha256_hex,
)

if TYPE_CHECKING:
    from aria.split import Placement

__all__ = ["Accounting"]

log = logging.getLogger(__name__)


def _run_place(split: Placement | None) -> RunPlace:
    if split is None:
        return RunPlace(where="local")
    devices = ("local", *(share.peer_id for share in split.shares))
    return RunPlace(where="split", devices=devices)


class Accounting:
    """The receipt of one generation in progress."""

    def __init__(
        self,
        *,
        recorder: Recorder | None,
        provenance: Provenance,
        job: GenerationJob,
        model_id: str,
        model_sha256: str,
        split: Placement | None,
        energy: OpenShare | None,
        started_ms: int,
        started: float,
    ) -> None:
        self._recorder = recorder
        self.provenance = provenance
        self._job = job
        self._model = ModelRef(id=model_id, sha256=model_sha256)
        self._place = _run_place(split)
        self._share = energy
        self._started_ms = started_ms
        self._started = started
        self._parts: list[str] = []
        self._finished = False
        self.energy: EnergyReading | None = None
        self.entry: SignedEntry | None = None

    @property
    def receipt_id(self) -> str | None:
        """The id the receipt will have (None when this node records nothing)."""
        return self.provenance.receipt_id if self._recorder is not None else None

    def saw(self, event: TokenEvent | ToolCallDelta | DoneEvent) -> None:
        if isinstance(event, TokenEvent):
            self._parts.append(event.text)

    async def finish(self, done: DoneEvent | None) -> None:
        """End the accounting (once): energy share closed, receipt recorded."""
        if self._finished:
            return
        self._finished = True
        with anyio.CancelScope(shield=True):
            if self._share is not None:
                self.energy = self._share.close()
            if self._recorder is None:
                return
            receipt = self._receipt(done)
            try:
                self.entry = await anyio.to_thread.run_sync(self._recorder.record, receipt)
            except LedgerError as exc:
                log.error("receipt %s not recorded: %s", receipt.id, exc.message)

    def _receipt(self, done: DoneEvent | None) -> Receipt:
        output = "".join(self._parts)
        prompt = self._job.to_wire()
        energy = self.energy
        provenance = self.provenance
        return Receipt(
            id=provenance.receipt_id,
            role="served" if provenance.peer is not None else "local",
            origin=provenance.origin,
            model=self._model,
            ran_on=self._place,
            peer=provenance.peer,
            prompt_tokens=done.prompt_tokens if done else 0,
            completion_tokens=done.completion_tokens if done else 0,
            finish=done.finish_reason if done else "error",
            started_ms=self._started_ms,
            duration_ms=int((time.perf_counter() - self._started) * 1000),
            energy=Energy(
                millijoules=int(energy.joules * 1000),
                source=energy.method,
                label=energy.label[:400],
            )
            if energy is not None
            else Energy(millijoules=0, source="none"),
            prompt_sha256=json_digest(prompt),
            output_sha256=sha256_hex(output),
            prompt_text=json.dumps(prompt.get("messages") or prompt.get("prompt")),
            output_text=output,
            contract=provenance.contract,
        )
