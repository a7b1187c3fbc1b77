"""ggml-rpc, llama.cpp's RPC protocol: native bindings, the wire format, the lender's filter
and the confined worker processes that serve it.

* :mod:`~aria.rpc.ggml_rpc` is the only module that touches the native library (the
  backend worker registers RPC servers with it; a worker process serves with it);
* :mod:`~aria.rpc.wire` (the message layout), :mod:`~aria.rpc.filter`,
  :mod:`~aria.rpc.ledger`, :mod:`~aria.rpc.graph` and :mod:`~aria.rpc.ops` (pure) are the
  filter every byte a peer sends to a lent worker passes first;
* :mod:`~aria.rpc.worker` is the worker process (127.0.0.1 only, confined by
  :mod:`~aria.rpc.sandbox`), started and stopped with :mod:`~aria.rpc.workers`;
  :mod:`~aria.rpc.probe` asks a worker what it offers.

This room sits below the backends, the peer network and split inference, which all use
it. Names are imported on first use (PEP 562): an RPC worker or probe process runs
``python -m aria.rpc.<module>`` and must not pay for anything else.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from aria._lazy import lazy_exports

if TYPE_CHECKING:
    from aria.rpc.filter import FilterLimits, RpcFilter
    from aria.rpc.ggml_rpc import LOOPBACK_HOST, parse_endpoint, require_loopback
    from aria.rpc.probe import WorkerProbe, measure_rtt, probe_worker, probe_workers
    from aria.rpc.worker import WorkerReady
    from aria.rpc.workers import (
        RpcWorker,
        free_loopback_port,
        listening_addresses,
        start_rpc_worker,
    )

__all__ = [
    "LOOPBACK_HOST",
    "FilterLimits",
    "RpcFilter",
    "RpcWorker",
    "WorkerProbe",
    "WorkerReady",
    "free_loopback_port",
    "listening_addresses",
    "measure_rtt",
    "parse_endpoint",
    "probe_worker",
    "probe_workers",
    "require_loopback",
    "start_rpc_worker",
]

_HOMES = {
    "FilterLimits": "filter",
    "LOOPBACK_HOST": "ggml_rpc",
    "RpcFilter": "filter",
    "RpcWorker": "workers",
    "WorkerProbe": "probe",
    "WorkerReady": "worker",
    "free_loopback_port": "workers",
    "listening_addresses": "workers",
    "measure_rtt": "probe",
    "parse_endpoint": "ggml_rpc",
    "probe_worker": "probe",
    "probe_workers": "probe",
    "require_loopback": "ggml_rpc",
    "start_rpc_worker": "workers",
}


__getattr__, __dir__ = lazy_exports(__name__, _HOMES, __all__)
