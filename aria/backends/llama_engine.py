"""The llama.cpp engine: continuous batching of many requests over one model copy.

One llama.cpp context holds ``slots`` sequences over a unified KV cache
(:mod:`aria.backends.llama_native`). Each step decodes one token of every running
request in a single ``llama_batch``, plus a paced chunk of the prompts of requests that
joined (:mod:`aria.backends.schedule`); each request samples from its own logits row
with its own native sampler chain (temperature, top-p/k, min-p, penalties, seed,
grammar), after ARIA's in-place edits of that row (``logit_bias``, the UTF-8 guard of
grammar output). A request that ends leaves its tokens' K/V in its slot, so the next
prompt sharing their prefix skips them (:mod:`aria.backends.slots`); a cancelled or
failed one has its cells removed at once.

Batching changes the last bits of the logits (batched kernels and attention over other
sequences' cells sum in other orders), and with them, where two tokens nearly tie, the
greedy text. A request marked ``isolated`` (work served for a peer, which the peer may
re-execute to check it) is therefore decoded as if it were alone: in a second context
of one sequence (the *lane*, emptied before each such request), its prompt in whole
batches, one token per ``llama_decode`` call of its own, no reused prefix. Its logits are
then bit-identical to a solo run's (tests/backends/test_backends_isolation.py). The lane
holds one more context window of K/V; one isolated request uses it at a time.
"""

from __future__ import annotations

import os
import random
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from aria.backends.decoding import TextAssembler
from aria.backends.engine import (
    EmbeddingCancelled,
    Embeddings,
    Ended,
    Failure,
    Finished,
    Piece,
    StepEvent,
)
from aria.backends.grammar import compile_grammar
from aria.backends.launch import WorkerLaunch
from aria.backends.llama_native import (
    NativeContext,
    NativeModel,
    SamplerChain,
    SamplingParams,
    TokenBatch,
)
from aria.backends.memory_limit import address_space_left
from aria.backends.prompting import ChatTemplate, generation_budget
from aria.backends.protocol import FinishReason, GenerationJob, WorkerInfo
from aria.backends.schedule import PrefillPacer, plan_step
from aria.backends.slots import SlotPlan, choose_slot, plan_slots
from aria.backends.utf8guard import Utf8Guard
from aria.errors import ContextLengthExceeded, InvalidRequest, RequestFailed

__all__ = ["LlamaEngine"]

# Tokens per llama_batch (and per compute pass): llama-cpp-python's default.
_BATCH_TOKENS = 512
# A joining prompt may add about this much to the step of the streams already decoding.
_PREFILL_STALL_S = 0.2
_PREFILL_MIN_TOKENS = 32
# The embedding context is separate (pooling needs its own context); inputs longer
# than this are refused rather than silently truncated.
_EMBED_CTX_CAP = 2048
# Room an embedding context needs beyond mapping the weights again, at the least.
_EMBED_FLOOR_BYTES = 128 * 2**20


def _chunks(counts: Sequence[int], budget: int) -> list[list[int]]:
    """Indexes of consecutive texts whose token counts fit ``budget`` together."""
    chunks: list[list[int]] = []
    used = budget
    for index, count in enumerate(counts):
        if used + count > budget:
            chunks.append([])
            used = 0
        chunks[-1].append(index)
        used += count
    return chunks


# logit_bias as arrays: token ids and what to add to their logits.
_Bias = tuple[npt.NDArray[np.int64], npt.NDArray[np.float32]]


@dataclass(eq=False)
class _Request:
    """One generation request inside the engine."""

    request_id: int
    prompt: list[int]
    budget: int
    chain: SamplerChain
    assembler: TextAssembler
    guard: Utf8Guard | None = None
    bias: _Bias | None = None
    owed: int = 0  # UTF-8 continuation bytes the grammar output still owes
    slot: int = -1
    fed: list[int] = field(default_factory=list)  # tokens whose K/V the slot holds
    pending: list[int] = field(default_factory=list)  # tokens to evaluate next
    produced: int = 0
    cached: int = 0
    isolated: bool = False  # decoded alone, in the lane

    def result(self, reason: FinishReason) -> Finished:
        return Finished(reason, len(self.prompt), self.produced, self.cached)


class LlamaEngine:
    """One loaded GGUF model serving up to ``info.slots`` requests at once."""

    def __init__(self, launch: WorkerLaunch) -> None:
        self._launch = launch
        self._model = NativeModel(
            launch.model_path,
            n_gpu_layers=launch.n_gpu_layers,
            tensor_split=launch.tensor_split,
        )
        self._embedder: Any = None
        self._generation: NativeContext | None = None
        # Where isolated requests decode; None: in the generation context, which then
        # has one sequence (nothing else decodes beside them) or spans ggml-rpc servers.
        self._lane: NativeContext | None = None
        if launch.embedding_only:  # an encoder (BERT): one embedding context, no generation
            plan = SlotPlan(slots=1, n_ctx=launch.n_ctx, kv_bytes_per_token=0)
            self._embedder = self._load_embedder()
        else:
            plan, lane = self._plan_slots(launch)
            self._generation = self._new_context(plan.kv_cells, plan.slots)
            if lane:
                self._lane = self._new_context(launch.n_ctx, 1)
        self._batch = TokenBatch(_BATCH_TOKENS)
        self._pacer = PrefillPacer(_PREFILL_STALL_S, _PREFILL_MIN_TOKENS, _BATCH_TOKENS)
        self._guard: Utf8Guard | None = None
        # Free slots and the tokens each still holds, least recently used first.
        self._free: dict[int, list[int]] = {slot: [] for slot in range(plan.slots)}
        self._running: dict[int, _Request] = {}  # in order of admission
        self._waiting: deque[_Request] = deque()
        self._cancelled: set[int] = set()
        metadata = self._model.metadata
        self.template = ChatTemplate(
            metadata.get("tokenizer.chat_template"),
            bos_token=self._token_text(self._model.bos),
            eos_token=self._token_text(self._model.eos),
        )
        self.info = WorkerInfo(
            engine="llama.cpp",
            n_ctx=launch.n_ctx,
            n_vocab=self._model.n_vocab,
            n_embd=self._model.n_embd,
            chat_template=self.template.source is not None,
            pid=os.getpid(),
            slots=plan.slots,
            kv_bytes=plan.kv_bytes + (self._lane_kv_bytes() if self._lane is not None else 0),
        )

    def _plan_slots(self, launch: WorkerLaunch) -> tuple[SlotPlan, bool]:
        """The slots, and whether a lane of its own decodes isolated requests (its window
        of K/V is taken from the budget, so the slots may be one fewer)."""
        per_token = self._model.kv_bytes_per_token()
        budget = launch.kv_budget_bytes

        def plan(budget: int | None) -> SlotPlan:
            return plan_slots(
                n_ctx=launch.n_ctx,
                kv_bytes_per_token=per_token,
                kv_budget_bytes=budget,
                max_slots=launch.parallel,
            )

        shared = plan(budget)
        if shared.slots == 1 or launch.rpc_servers:
            return shared, False
        return plan(None if budget is None else budget - launch.n_ctx * per_token), True

    def _lane_kv_bytes(self) -> int:
        return self._launch.n_ctx * self._model.kv_bytes_per_token()

    def _new_context(self, n_ctx: int, n_seq_max: int) -> NativeContext:
        return NativeContext(
            self._model,
            n_ctx=n_ctx,
            n_seq_max=n_seq_max,
            n_batch=_BATCH_TOKENS,
            threads=self._launch.threads,
            flash_attn=self._launch.flash_attn,
        )

    def _token_text(self, token: int) -> str:
        if token < 0:
            return ""
        return self._model.piece(token, special=True).decode("utf-8", errors="replace")

    # -- requests ------------------------------------------------------------------------

    def tokenize(self, job: GenerationJob) -> list[int]:
        rendered = self.template.render(job)
        tokens = self._model.tokenize(
            rendered.text.encode("utf-8"), add_special=not rendered.has_special, parse_special=True
        )
        if not tokens:
            if self._model.bos < 0:
                raise InvalidRequest("the prompt is empty", param="prompt")
            tokens = [self._model.bos]
        return tokens

    def submit(self, request_id: int, job: GenerationJob) -> None:
        if self._launch.embedding_only:
            raise InvalidRequest(
                "this model only produces embeddings (use /v1/embeddings)", param="model"
            )
        prompt = self.tokenize(job)
        budget = generation_budget(len(prompt), job.max_tokens, self.info.n_ctx)
        bias = self._bias(job.logit_bias) if job.logit_bias else None
        grammar = compile_grammar(job.grammar) if job.grammar is not None else None
        params = SamplingParams(
            temperature=job.temperature,
            top_p=job.top_p,
            seed=job.seed if job.seed is not None else random.getrandbits(32),
            presence_penalty=job.presence_penalty,
            frequency_penalty=job.frequency_penalty,
        )
        try:
            chain = SamplerChain(self._model, params, grammar)
        except ValueError:
            raise InvalidRequest(
                "the requested output format does not compile to a grammar"
            ) from None
        self._waiting.append(
            _Request(
                request_id=request_id,
                prompt=prompt,
                budget=budget,
                chain=chain,
                assembler=TextAssembler(job.stop),
                guard=self._utf8_guard() if grammar is not None else None,
                bias=bias,
                isolated=job.isolated,
            )
        )

    def _bias(self, bias: dict[int, float]) -> _Bias:
        bad = [token for token in bias if not 0 <= token < self.info.n_vocab]
        if bad:
            raise InvalidRequest(
                f"logit_bias names token {bad[0]}, outside this model's vocabulary "
                f"(0..{self.info.n_vocab - 1})",
                param="logit_bias",
            )
        return np.array(list(bias), dtype=np.int64), np.array(list(bias.values()), np.float32)

    def _utf8_guard(self) -> Utf8Guard:
        if self._guard is None:
            self._guard = Utf8Guard([self._model.piece(t) for t in range(self.info.n_vocab)])
        return self._guard

    @property
    def _context(self) -> NativeContext:
        """The generation context (an embedding-only engine has none and takes no job)."""
        assert self._generation is not None, "an embedding-only engine generates nothing"
        return self._generation

    def cancel(self, request_id: int) -> None:
        self._cancelled.add(request_id)

    def has_work(self) -> bool:
        return bool(self._running or self._waiting or self._cancelled)

    # -- the step ------------------------------------------------------------------------

    def step(self) -> list[StepEvent]:
        events: list[StepEvent] = []
        self._end_cancelled(events)
        self._admit()
        running = [r for r in self._running.values() if not r.isolated]
        decoding = [r.request_id for r in running if len(r.pending) == 1]
        prefilling = [(r.request_id, len(r.pending)) for r in running if len(r.pending) > 1]
        plan = plan_step(
            decoding,
            prefilling,
            capacity=self._batch.capacity,
            prefill_budget=self._pacer.budget(decoding=bool(decoding)),
        )
        if plan:
            self._decode(self._context, plan, events, paced=True)
        for alone in [r for r in self._running.values() if r.isolated]:
            # Its own call, its prompt in whole batches: the schedule of a solo run.
            take = min(len(alone.pending), self._batch.capacity)
            self._decode(self._lane or self._context, [(alone.request_id, take)], events)
        return events

    def _decode(
        self,
        context: NativeContext,
        plan: list[tuple[int, int]],
        events: list[StepEvent],
        *,
        paced: bool = False,
    ) -> None:
        """One ``llama_decode`` of ``plan``'s tokens, then the next token of each request
        whose pending tokens are all in."""
        self._batch.clear()
        outputs: dict[int, int] = {}
        for request_id, count in plan:
            request = self._running[request_id]
            outputs[request_id] = self._batch.add(
                request.pending[:count],
                len(request.fed),
                self._seq(request),
                logits=count == len(request.pending),
            )
        started = time.perf_counter()
        status = context.decode(self._batch)
        if paced:
            self._pacer.observe(self._batch.size, time.perf_counter() - started)
        if status != 0:
            for request_id, _ in plan:
                error = RequestFailed(f"llama.cpp could not decode this step (status {status})")
                self._end(self._running[request_id], events, failure=error)
            return
        for request_id, count in plan:
            request = self._running[request_id]
            request.fed.extend(request.pending[:count])
            del request.pending[:count]
            if not request.pending:
                try:
                    self._next_token(request, context, outputs[request_id], events)
                except Exception as exc:  # this request's failure; the others go on
                    self._end(request, events, failure=exc)

    def _seq(self, request: _Request) -> int:
        """The request's sequence in the context it decodes in (the lane has one)."""
        return 0 if request.isolated and self._lane is not None else request.slot

    def _end_cancelled(self, events: list[StepEvent]) -> None:
        for request_id in self._cancelled:
            if (running := self._running.get(request_id)) is not None:
                self._end(running, events, "cancelled")
                continue
            for waiting in self._waiting:
                if waiting.request_id == request_id:
                    self._waiting.remove(waiting)
                    waiting.chain.close()
                    events.append(Ended(request_id, waiting.result("cancelled")))
                    break
        self._cancelled.clear()

    def _admit(self) -> None:
        """Queued requests take free slots, each the one caching most of its prompt; an
        isolated request waits while another one is running."""
        passed: list[_Request] = []
        while self._waiting and self._free:
            request = self._waiting.popleft()
            if request.isolated:
                if any(r.isolated for r in self._running.values()):
                    passed.append(request)
                    continue
                self._isolate(request)
            else:
                self._place(request)
            self._running[request.request_id] = request
        self._waiting.extendleft(reversed(passed))

    def _place(self, request: _Request) -> None:
        choice = choose_slot(request.prompt, self._free)
        cached = self._free.pop(choice.slot)
        keep = choice.reused
        if keep < len(cached) and not self._context.forget(choice.slot, keep):
            self._context.forget(choice.slot)  # cannot cut in the middle: start afresh
            keep = 0
        request.slot = choice.slot
        request.fed = request.prompt[:keep]
        request.pending = request.prompt[keep:]
        request.cached = keep

    def _isolate(self, request: _Request) -> None:
        """Take the least recently used slot (it bounds how many requests run) and start
        from an empty cache, as a solo run does: no reused prefix."""
        request.slot = next(iter(self._free))
        del self._free[request.slot]
        self._context.forget(request.slot)
        if self._lane is not None:
            self._lane.clear()
        elif self.info.slots == 1:
            self._context.clear()  # nobody else's cells: place its own from the first
        request.pending = list(request.prompt)

    def _next_token(
        self, request: _Request, context: NativeContext, index: int, events: list[StepEvent]
    ) -> None:
        if request.bias is not None or request.guard is not None:
            logits = context.logits(index)
            if request.bias is not None:
                logits[request.bias[0]] += request.bias[1]
            if request.guard is not None:
                logits[request.guard.blocked(request.owed)] = -np.inf
        token = request.chain.sample(context, index)
        if self._model.is_eog(token):
            self._end(request, events, "stop")
            return
        request.produced += 1
        if request.guard is not None:
            request.owed = request.guard.advance(request.owed, token)
        text = request.assembler.feed(self._model.piece(token))
        if text:
            events.append(Piece(request.request_id, text))
        if request.assembler.stopped:
            self._end(request, events, "stop")
        elif request.produced >= request.budget:
            self._end(request, events, "length")
        else:
            request.pending.append(token)

    def _end(
        self,
        request: _Request,
        events: list[StepEvent],
        reason: FinishReason = "stop",
        *,
        failure: Exception | None = None,
    ) -> None:
        """Report the end of ``request`` and free its slot (its cells too, unless it
        finished normally: then they are the slot's cache for the next prompt)."""
        del self._running[request.request_id]
        request.chain.close()
        keep = failure is None and reason != "cancelled" and not request.isolated
        if not keep:
            self._context.forget(request.slot)
        self._free[request.slot] = request.fed if keep else []
        if failure is not None:
            events.append(Failure(request.request_id, failure))
            return
        tail = request.assembler.flush()
        if tail:
            events.append(Piece(request.request_id, tail))
        events.append(Ended(request.request_id, request.result(reason)))

    # -- embeddings ----------------------------------------------------------------------

    def prepare_embeddings(self) -> None:
        if self._embedder is None:
            self._embedder = self._load_embedder()

    def embed(self, texts: Sequence[str], cancelled: Callable[[], bool]) -> Embeddings:
        """Embed in chunks of one context's worth of tokens (llama-cpp-python's own batch
        size), checking ``cancelled`` between chunks."""
        self.prepare_embeddings()
        embedder = self._embedder
        limit = embedder.n_ctx()
        counts = [len(embedder.tokenize(text.encode("utf-8"), add_bos=True)) for text in texts]
        for index, count in enumerate(counts):
            if count > limit:
                raise ContextLengthExceeded(
                    f"input {index} is {count} tokens; this model embeds at most {limit}",
                    param="input",
                )
        vectors: list[list[float]] = []
        for chunk in _chunks(counts, limit):
            if cancelled():
                raise EmbeddingCancelled
            batch = [texts[index] for index in chunk]
            done = embedder.embed(batch, normalize=True, truncate=False)
            vectors.extend(list(map(float, v)) for v in done)
        return Embeddings(vectors=vectors, prompt_tokens=sum(counts))

    def _load_embedder(self) -> Any:
        """A second context in embedding mode (the weights are mmap-shared with the first).

        Raises:
            RequestFailed: the address-space cap leaves no room for it (trying anyway
                could abort the process inside llama.cpp).
        """
        from llama_cpp import LLAMA_POOLING_TYPE_MEAN, LLAMA_POOLING_TYPE_UNSPECIFIED, Llama

        left = address_space_left()
        needed = Path(self._launch.model_path).stat().st_size + _EMBED_FLOOR_BYTES
        if left is not None and left < needed:
            raise RequestFailed(
                f"no memory left for an embedding context: {left / 2**20:.0f} MiB of this "
                f"backend's address space remain, at least {needed / 2**20:.0f} MiB are needed"
            )
        if self._launch.embedding_only:  # an embedding model declares its own pooling
            pooling = LLAMA_POOLING_TYPE_UNSPECIFIED
        else:
            metadata = self._model.metadata
            declared = f"{metadata.get('general.architecture', '')}.pooling_type" in metadata
            pooling = LLAMA_POOLING_TYPE_UNSPECIFIED if declared else LLAMA_POOLING_TYPE_MEAN
        n_ctx = min(self._launch.n_ctx, _EMBED_CTX_CAP)
        return Llama(
            model_path=self._launch.model_path,
            embedding=True,
            pooling_type=pooling,
            n_ctx=n_ctx,
            n_batch=n_ctx,
            n_ubatch=n_ctx,
            n_threads=self._launch.threads,
            n_threads_batch=self._launch.threads,
            n_gpu_layers=self._launch.n_gpu_layers,
            verbose=False,
        )

    def close(self) -> None:
        for request in [*self._running.values(), *self._waiting]:
            request.chain.close()
        self._running.clear()
        self._waiting.clear()
        self._batch.close()
        if self._generation is not None:
            self._generation.close()
        if self._lane is not None:
            self._lane.close()
        if self._embedder is not None:
            self._embedder.close()
        self._model.close()
