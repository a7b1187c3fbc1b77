"""Can this node run a catalog entry, on which engine, and if not, what would fix it (pure).

ARIA has two engines. Its own llama.cpp (llama-cpp-python) loads every GGUF format of the
catalog except bitnet.cpp's ``I2_S``, including the TQ1_0/TQ2_0 files ARIA converts 1-bit
checkpoints to. bitnet.cpp's server loads ``I2_S`` files, and is there only once the
operator installed it (``aria engine install bitnet``). ``aria model list`` shows this
verdict, ``aria model download`` refuses an entry that cannot run (unless ``--anyway``),
and the router never picks one.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from aria.catalog.entries import CatalogEntry, ConvertedSource

__all__ = ["Engine", "Runnability", "runnability"]


class Engine(StrEnum):
    LLAMA_CPP = "llama.cpp"
    BITNET_CPP = "bitnet.cpp"


@dataclass(frozen=True)
class Runnability:
    """The engine that runs an entry here (``None``: none can), and why."""

    engine: Engine | None
    reason: str
    remedy: str | None = None

    @property
    def ok(self) -> bool:
        return self.engine is not None


def runnability(entry: CatalogEntry, *, bitnet_cpp: bool) -> Runnability:
    """Which engine of this node runs ``entry`` (``bitnet_cpp``: is bitnet.cpp installed?)."""
    if entry.needs_bitnet_cpp:
        if bitnet_cpp:
            return Runnability(Engine.BITNET_CPP, f"{entry.quantization} file on bitnet.cpp")
        return Runnability(
            None,
            f"{entry.quantization} is bitnet.cpp's format, which llama.cpp cannot load, and "
            "bitnet.cpp is not installed",
            "aria engine install bitnet",
        )
    if isinstance(entry.source, ConvertedSource):
        return Runnability(
            Engine.LLAMA_CPP,
            f"converted here from the published checkpoint to {entry.source.target}",
        )
    return Runnability(Engine.LLAMA_CPP, f"{entry.quantization} file on llama.cpp")
