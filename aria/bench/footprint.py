"""Read a GGUF's tensor table into the bytes a decode step touches (for the roofline)."""

from __future__ import annotations

from pathlib import Path

from aria.bench.roofline import ModelFootprint
from aria.errors import BackendUnavailable

__all__ = ["read_footprint"]


def read_footprint(path: Path) -> ModelFootprint:
    """Sizes from the header (memory-mapped; weights are not read).

    Raises:
        BackendUnavailable: ``path`` is not a readable GGUF model.
    """
    from gguf import GGUFReader

    try:
        reader = GGUFReader(path)
        arch = str(reader.fields["general.architecture"].contents())
        tensors = {t.name: t for t in reader.tensors}
        embedding = tensors["token_embd.weight"]
        n_layers = int(reader.fields[f"{arch}.block_count"].contents())
        n_embd = int(reader.fields[f"{arch}.embedding_length"].contents())
        n_head = int(reader.fields[f"{arch}.attention.head_count"].contents())
        kv_field = reader.fields.get(f"{arch}.attention.head_count_kv")
        n_head_kv = int(kv_field.contents()) if kv_field is not None else n_head
        key_field = reader.fields.get(f"{arch}.attention.key_length")
        head_size = int(key_field.contents()) if key_field is not None else n_embd // n_head
    except (KeyError, ValueError, IndexError, TypeError, OSError) as exc:
        raise BackendUnavailable(f"{path} is not a readable GGUF model ({exc})") from exc
    n_rows = int(embedding.shape[-1]) if len(embedding.shape) > 1 else 1
    return ModelFootprint(
        weight_bytes=sum(int(t.n_bytes) for t in tensors.values()),
        embedding_bytes=int(embedding.n_bytes),
        embedding_row_bytes=int(embedding.n_bytes) // max(n_rows, 1),
        tied_output="output.weight" not in tensors,
        n_layers=n_layers,
        n_embd_kv=n_head_kv * head_size,
        n_params=sum(int(t.n_elements) for t in tensors.values()),
    )
