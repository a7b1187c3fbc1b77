"""What an imported GGUF says about itself, turned into a catalog entry for the store.

Files the operator imports that are not in ARIA's catalog still need an entry (tier,
licence, context length...) so the router and the licence gate can treat them like any
other model. It comes from the file's own GGUF metadata; nothing is guessed that the file
does not state, except conservative defaults that are named as such in ``notes``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from aria.catalog.entries import (
    Capability,
    CatalogEntry,
    LocalSource,
    MemoryFloor,
    ModelId,
    Tier,
)
from aria.catalog.gate import Use, evaluate, require
from aria.catalog.licences import LicenceClass, canonical_licence, classify
from aria.catalog.loader import Catalog
from aria.errors import LicenceRejected, StoreError

if TYPE_CHECKING:
    from gguf import GGUFReader

__all__ = ["GgufInfo", "import_entry", "local_entry", "model_id_from_path", "read_gguf_info"]

_DEFAULT_CONTEXT = 2048
_TERNARY = frozenset({"TQ1_0", "TQ2_0"})
_ID_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


@dataclass(frozen=True)
class GgufInfo:
    """The metadata ARIA needs from a GGUF header."""

    architecture: str
    name: str | None
    basename: str | None
    licence: str | None
    quantization: str
    context_length: int | None
    parameters: int
    chat_template: bool


def read_gguf_info(path: Path) -> GgufInfo:
    """Read the header of ``path`` (memory-mapped; tensor data is not read).

    Raises:
        StoreError: the file is not a readable GGUF.
    """
    from gguf import GGUFReader, LlamaFileType

    try:
        reader = GGUFReader(path)
        architecture = _text(reader, "general.architecture")
        file_type = _scalar(reader, "general.file_type")
        context = _scalar(reader, f"{architecture}.context_length") if architecture else None
        parameters = sum(int(tensor.n_elements) for tensor in reader.tensors)
        tensor_types = [tensor.tensor_type.name for tensor in reader.tensors]
        info = GgufInfo(
            architecture=architecture or "unknown",
            name=_text(reader, "general.name"),
            basename=_text(reader, "general.basename"),
            licence=_text(reader, "general.license"),
            quantization=(
                LlamaFileType(file_type).name.removeprefix("MOSTLY_").removeprefix("ALL_")
                if file_type is not None and file_type in LlamaFileType._value2member_map_
                else max(set(tensor_types), key=tensor_types.count, default="unknown")
            ),
            context_length=context,
            parameters=parameters,
            chat_template=reader.get_field("tokenizer.chat_template") is not None,
        )
    except (ValueError, IndexError, KeyError, TypeError, OSError) as exc:
        raise StoreError(f"{path} is not a readable GGUF model file ({exc})") from exc
    if parameters <= 0:
        raise StoreError(f"{path} holds no tensors; it is not a usable model")
    return info


def local_entry(
    info: GgufInfo, *, model_id: str, path: Path, size_bytes: int, sha256: str
) -> CatalogEntry:
    """The catalog entry of an imported file (``info.licence`` must be set)."""
    ternary = info.architecture == "bitnet" or info.quantization in _TERNARY
    notes = f"imported from {path}"
    if info.context_length is None:
        notes += f"; the file states no context length, {_DEFAULT_CONTEXT} assumed"
    return CatalogEntry(
        id=ModelId(model_id),
        name=info.name or path.stem,
        family=info.basename or info.architecture,
        tier=Tier.EFFICIENCY if ternary else Tier.QUALITY,
        architecture=info.architecture,
        params_b=round(info.parameters / 1e9, 4) or 0.0001,
        quantization=info.quantization,
        licence=canonical_licence(info.licence or "unknown"),
        source=LocalSource(path=str(path)),
        size_bytes=size_bytes,
        sha256=sha256,
        context_length=info.context_length or _DEFAULT_CONTEXT,
        capabilities=frozenset({Capability.CHAT}) if info.chat_template else frozenset(),
        memory=MemoryFloor(ram_gb=round(size_bytes * 1.15 / 1e9 + 0.1, 2), vram_gb=0.0),
        native_1bit=ternary,
        notes=notes,
    )


def import_entry(
    catalog: Catalog,
    info: GgufInfo,
    *,
    path: Path,
    sha256: str,
    size_bytes: int,
    model_id: str | None,
    accept_license: bool,
) -> tuple[CatalogEntry, bool]:
    """The entry an imported file is stored under, and whether a yellow licence was accepted.

    A file whose sha256 the catalog pins *is* that catalog model (green by construction).
    Any other file gets an entry from its own metadata and must pass the licence gate for
    ``Use.LOCAL_IMPORT``.

    Raises:
        StoreError: ``model_id`` conflicts with the catalog.
        LicenceRejected: the file declares no licence, or a red one.
        LicenceNotAccepted: a yellow licence without ``accept_license``.
    """
    known = catalog.find_by_sha256(sha256)
    if known is not None:
        if model_id is not None and model_id.casefold() != known.id.casefold():
            raise StoreError(f"{path.name} is the catalog model {known.id}; import it without --id")
        return known, False
    chosen = model_id or model_id_from_path(path)
    if chosen in catalog:
        raise StoreError(
            f"{chosen} is a catalog model and {path.name} is not its file (the sha256 differs); "
            "choose another id with --id"
        )
    if info.licence is None:
        raise LicenceRejected(
            f"{path.name} declares no licence (GGUF general.license is missing); ARIA imports "
            "only files whose licence it can check"
        )
    require(evaluate(info.licence, Use.LOCAL_IMPORT, accepted=accept_license), subject=path.name)
    entry = local_entry(info, model_id=chosen, path=path, size_bytes=size_bytes, sha256=sha256)
    return entry, accept_license and classify(info.licence) is LicenceClass.YELLOW


def model_id_from_path(path: Path) -> str:
    """A catalog-style id from a file name: ``My Model.Q4_0.gguf`` -> ``My-Model.Q4_0``."""
    candidate = _ID_UNSAFE.sub("-", path.stem).strip("-._")
    return candidate or "imported-model"


def _field(reader: GGUFReader, key: str) -> object | None:
    field = reader.get_field(key)
    return None if field is None else field.contents()


def _text(reader: GGUFReader, key: str) -> str | None:
    value = _field(reader, key)
    return (value.strip() or None) if isinstance(value, str) else None


def _scalar(reader: GGUFReader, key: str) -> int | None:
    value = _field(reader, key)
    return int(value) if isinstance(value, int) else None
