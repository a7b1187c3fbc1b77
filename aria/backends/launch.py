"""How a backend worker is launched: its options, and the pure choice of them per model.

The options travel to the worker as one JSON argument, so later features add fields
without touching the command line (split inference adds the ggml-rpc servers the
worker registers before it loads the model).
"""

from __future__ import annotations

import json
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal

from aria.backends.memory_limit import DEFAULT_HEADROOM_BYTES
from aria.catalog.entries import Capability, CatalogEntry, Tier
from aria.errors import BackendUnavailable

__all__ = [
    "DEFAULT_CONTEXT_CAP",
    "DEFAULT_PARALLEL",
    "Engine",
    "WorkerLaunch",
    "choose_launch",
]

# "fake": aria.backends.fake_engine, a model-less engine for tests (never chosen by
# choose_launch; a test selects it, e.g. Node(engine="fake")).
Engine = Literal["llama", "bitnet-server", "fake"]

# Requests one backend decodes together unless settings say otherwise.
DEFAULT_PARALLEL = 8

# A model's full trained window can be huge (128k); the KV cache for it would dwarf
# a small model's weights, so the default window is capped (settings can raise it).
DEFAULT_CONTEXT_CAP = 8192


@dataclass(frozen=True)
class WorkerLaunch:
    """Everything a worker needs to load one model."""

    model_path: str
    n_ctx: int
    threads: int
    engine: Engine = "llama"
    n_gpu_layers: int = 0
    server_binary: str | None = None
    # Split inference (aria.split): ggml-rpc servers registered before loading, in the
    # order tensor_split weights them.
    rpc_servers: tuple[str, ...] = ()
    tensor_split: tuple[float, ...] = ()
    # The worker's address-space cap above what it uses once loaded (None: no cap).
    address_space_headroom_bytes: int | None = DEFAULT_HEADROOM_BYTES
    # Continuous batching: at most ``parallel`` requests decode together, as many as
    # whole context windows of K/V cache fit ``kv_budget_bytes`` (None: no bound).
    parallel: int = DEFAULT_PARALLEL
    kv_budget_bytes: int | None = None
    # llama.cpp's flash attention: skips the cells of other sequences in the unified cache.
    flash_attn: bool = False
    # Encoder-only embedding models (BERT): one embedding context, no generation.
    embedding_only: bool = False

    def argv(self) -> list[str]:
        """The command line starting a worker with these options."""
        return [sys.executable, "-m", "aria.backends.worker", json.dumps(asdict(self))]

    @classmethod
    def from_json(cls, text: str) -> WorkerLaunch:
        data = json.loads(text)
        for key in ("rpc_servers", "tensor_split"):
            data[key] = tuple(data.get(key, ()))
        return cls(**data)


def choose_launch(
    entry: CatalogEntry,
    model_path: Path,
    *,
    threads: int,
    gpu_available: bool,
    context_length: int | None,
    bitnet_server: Path | None,
    parallel: int = DEFAULT_PARALLEL,
    kv_budget_bytes: int | None = None,
) -> WorkerLaunch:
    """Map a model's file format and tier to its backend.

    Files in bitnet.cpp's own format (I2_S) run on the bitnet.cpp server when one is
    installed; every other file, ternary TQ1_0/TQ2_0 included (the format ARIA converts
    1-bit checkpoints to), runs on ARIA's llama.cpp: on the CPU, or with every layer
    offloaded for the Accelerated tier when a GPU was detected. The bitnet.cpp server
    decodes one request at a time; llama.cpp decodes up to ``parallel`` together, as
    many as ``kv_budget_bytes`` of K/V cache hold.

    Raises:
        BackendUnavailable: the file is in a format only bitnet.cpp reads and no
            bitnet.cpp server is configured (the fallback chain then moves on).
    """
    n_ctx = min(entry.context_length, context_length or DEFAULT_CONTEXT_CAP)
    if entry.needs_bitnet_cpp and bitnet_server is not None:
        return WorkerLaunch(
            model_path=str(model_path),
            n_ctx=n_ctx,
            threads=threads,
            engine="bitnet-server",
            server_binary=str(bitnet_server),
            parallel=1,
        )
    if entry.needs_bitnet_cpp:
        raise BackendUnavailable(
            f"{entry.id} ships in bitnet.cpp's {entry.quantization} format, which llama.cpp "
            "cannot load; install bitnet.cpp with `aria engine install bitnet`",
            param="model",
        )
    gpu_layers = -1 if entry.tier is Tier.ACCELERATED and gpu_available else 0
    return WorkerLaunch(
        model_path=str(model_path),
        n_ctx=n_ctx,
        threads=threads,
        n_gpu_layers=gpu_layers,
        parallel=parallel,
        kv_budget_bytes=kv_budget_bytes,
        # GPU drivers reserve far more address space than memory: no cap there.
        address_space_headroom_bytes=None if gpu_layers else DEFAULT_HEADROOM_BYTES,
        embedding_only=not entry.capabilities & _GENERATES,
    )


_GENERATES = frozenset({Capability.CHAT, Capability.COMPLETION})
