"""Backends: one OS process per loaded model, supervised by the dispatcher.

* ``protocol``    -- the line protocol between node and worker (jobs, events, errors);
* ``worker``      -- the worker process (``python -m aria.backends.worker``), which caps its
  own address space once loaded (``memory_limit``);
* ``engine``      -- what a worker needs from an engine (steps of many requests at once);
* ``llama_engine``/``llama_native`` -- continuous batching over llama.cpp's multi-sequence
  API; ``slots``/``schedule`` -- its pure decisions (slots from memory, prefix-reusing slot
  choice, what each step evaluates);
* ``bitnet_engine``/``sequential`` -- bitnet.cpp's server, served one request at a time;
* ``launch``      -- worker options and the tier -> engine choice;
* ``process``/``channel`` -- one worker process seen from the node, its output routed to
  the requests it serves;
* ``plan``/``states`` -- the pure start/evict/stop decisions and backend states;
* ``dispatcher``/``lease`` -- supervision, slots and fair queueing, one request on a backend;
* ``chain``       -- serving from the first model of a fallback chain that works;
* ``toolcalls``/``grammar``/``decoding``/``prompting`` -- text in and out of a model;
* ``bounds``      -- what a client's schemas and JSON may cost before anything parses them.

Nothing here imports ``llama_cpp`` at module level; only the worker process loads it.
"""

from aria.backends.bitnet import SERVER_NAMES, find_bitnet_server
from aria.backends.chain import Attempt, Opened, open_first
from aria.backends.dispatcher import BackendView, Dispatcher
from aria.backends.engine import Embeddings, Finished
from aria.backends.launch import WorkerLaunch, choose_launch
from aria.backends.lease import (
    DoneEvent,
    Generation,
    GenerationStream,
    Lease,
    TokenEvent,
    ToolCallDelta,
)
from aria.backends.plan import Limits
from aria.backends.protocol import FinishReason, GenerationJob, GrammarSpec, WorkerInfo
from aria.backends.states import BackendState, Busy, Failed, Loading, Ready, Starting
from aria.backends.toolcalls import ContentDelta, ParsedToolCall, ToolCallParser

__all__ = [
    "SERVER_NAMES",
    "Attempt",
    "BackendState",
    "BackendView",
    "Busy",
    "ContentDelta",
    "Dispatcher",
    "DoneEvent",
    "Embeddings",
    "Failed",
    "FinishReason",
    "Finished",
    "Generation",
    "GenerationJob",
    "GenerationStream",
    "GrammarSpec",
    "Lease",
    "Limits",
    "Loading",
    "Opened",
    "ParsedToolCall",
    "Ready",
    "Starting",
    "TokenEvent",
    "ToolCallDelta",
    "ToolCallParser",
    "WorkerInfo",
    "WorkerLaunch",
    "choose_launch",
    "find_bitnet_server",
    "open_first",
]
