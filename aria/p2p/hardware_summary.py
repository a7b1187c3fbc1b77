"""A short, stable view of a node's hardware for handshakes and peer listings (pure).

Peers may run other ARIA versions whose full ``HardwareSnapshot`` has other fields,
so what peers read first is this small summary (every field defaulted, unknown ones
ignored); the full snapshot travels in the advert as opaque JSON.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from aria.hardware.models import HardwareSnapshot

__all__ = ["HardwareSummary", "summarize_hardware"]


class HardwareSummary(BaseModel):
    """The few hardware facts a peer needs to judge another node at a glance."""

    model_config = ConfigDict(frozen=True, extra="ignore", allow_inf_nan=False)

    arch: str = Field(default="unknown", max_length=32)
    cpu_cores: int = Field(default=0, ge=0, le=100_000)
    memory_gb: float = Field(default=0.0, ge=0, le=1_000_000)
    gpu: str | None = Field(default=None, max_length=128)

    def describe(self) -> str:
        gpu = self.gpu or "no GPU"
        return f"{self.arch}, {self.cpu_cores} cores, {self.memory_gb:.1f} GiB, {gpu}"


def summarize_hardware(snapshot: HardwareSnapshot) -> HardwareSummary:
    """Summarise this machine's snapshot for the handshake and the advert."""
    gpu = snapshot.gpus[0].name[:128] if snapshot.gpus else None
    return HardwareSummary(
        arch=snapshot.cpu.arch[:32],
        cpu_cores=snapshot.cpu.logical_cores,
        memory_gb=round(snapshot.memory.total_bytes / 2**30, 2),
        gpu=gpu,
    )
