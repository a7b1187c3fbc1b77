"""The llama.cpp engine: llama-cpp-python's ``Llama`` inside a worker process.

ARIA drives ``Llama.generate`` token by token instead of ``create_completion`` so it
counts tokens exactly, checks for cancellation between two tokens, and decodes each
token once (``create_completion``'s stream re-detokenizes the whole answer per token).
Sampling defaults follow llama.cpp (top-k 40, min-p 0.05); OpenAI's temperature
and top_p apply on top.
"""

from __future__ import annotations

import os
import random
from collections.abc import Callable, Generator, Sequence
from typing import Any

from aria.backends.decoding import TextAssembler
from aria.backends.engine import EmbeddingCancelled, Embeddings, Finished
from aria.backends.grammar import compile_grammar
from aria.backends.launch import WorkerLaunch
from aria.backends.prompting import ChatTemplate, generation_budget
from aria.backends.protocol import FinishReason, GenerationJob, WorkerInfo
from aria.backends.utf8guard import Utf8Guard
from aria.errors import ContextLengthExceeded, InvalidRequest

__all__ = ["LlamaEngine"]


def _masked(scores: Any, blocked: Any) -> Any:
    scores[blocked] = -float("inf")
    return scores


# The embedding context is separate (pooling needs its own context); inputs longer
# than this are refused rather than silently truncated.
_EMBED_CTX_CAP = 2048


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


class LlamaEngine:
    """One loaded GGUF model; not thread-safe (the worker serves one job at a time)."""

    def __init__(self, launch: WorkerLaunch) -> None:
        if launch.rpc_servers:  # before llama_cpp loads ggml: split inference setup
            from aria.rpc.ggml_rpc import prepare_orchestrator

            prepare_orchestrator(launch.rpc_servers)
        from llama_cpp import Llama, llama_model_get_vocab

        self._launch = launch
        self._embedder: Any = None
        self._llm: Llama
        if launch.embedding_only:
            self._llm = self._embedder = self._load_embedder()
        else:
            self._llm = Llama(
                model_path=launch.model_path,
                n_ctx=launch.n_ctx,
                n_threads=launch.threads,
                n_threads_batch=launch.threads,
                n_gpu_layers=launch.n_gpu_layers,
                tensor_split=list(launch.tensor_split) or None,
                verbose=False,
            )
        self._vocab = llama_model_get_vocab(self._llm.model)
        self._guard: Utf8Guard | None = None
        self.template = ChatTemplate(
            self._llm.metadata.get("tokenizer.chat_template"),
            bos_token=self._token_text(self._llm.token_bos()),
            eos_token=self._token_text(self._llm.token_eos()),
        )
        self.info = WorkerInfo(
            engine="llama.cpp",
            n_ctx=self._llm.n_ctx(),
            n_vocab=self._llm.n_vocab(),
            n_embd=self._llm.n_embd(),
            chat_template=self.template.source is not None,
            pid=os.getpid(),
        )

    def _token_text(self, token: int) -> str:
        if token < 0:
            return ""
        return self._llm.detokenize([token], special=True).decode("utf-8", errors="replace")

    def tokenize(self, job: GenerationJob) -> list[int]:
        rendered = self.template.render(job)
        tokens = self._llm.tokenize(
            rendered.text.encode("utf-8"), add_bos=not rendered.has_special, special=True
        )
        if not tokens:
            bos = self._llm.token_bos()
            if bos < 0:
                raise InvalidRequest("the prompt is empty", param="prompt")
            tokens = [bos]
        return tokens

    def generate(
        self, job: GenerationJob, cancelled: Callable[[], bool]
    ) -> Generator[str, None, Finished]:
        from llama_cpp import LogitsProcessorList, llama_vocab_is_eog
        from llama_cpp.llama_grammar import LlamaGrammar

        if self._launch.embedding_only:
            raise InvalidRequest(
                "this model only produces embeddings (use /v1/embeddings)", param="model"
            )
        prompt = self.tokenize(job)
        budget = generation_budget(len(prompt), job.max_tokens, self.info.n_ctx)
        grammar, guard, owed = None, None, [0]
        processors = LogitsProcessorList([self._bias(job.logit_bias)] if job.logit_bias else [])
        if job.grammar is not None:
            grammar = LlamaGrammar.from_string(self._checked(compile_grammar(job.grammar)))
            guard = self._utf8_guard()
            processors.append(lambda _ids, scores: _masked(scores, guard.blocked(owed[0])))
        self._llm.set_seed(job.seed if job.seed is not None else random.getrandbits(32))
        assembler = TextAssembler(job.stop)
        produced = 0
        finish: FinishReason = "length"
        tokens = self._llm.generate(
            prompt,
            temp=job.temperature,
            top_p=job.top_p,
            frequency_penalty=job.frequency_penalty,
            presence_penalty=job.presence_penalty,
            repeat_penalty=1.0,
            logits_processor=processors or None,
            grammar=grammar,
        )
        for token in tokens:
            if cancelled():
                finish = "cancelled"
                break
            if llama_vocab_is_eog(self._vocab, token):
                finish = "stop"
                break
            produced += 1
            if guard is not None:
                owed[0] = guard.advance(owed[0], token)
            text = assembler.feed(self._llm.detokenize([token]))
            if text:
                yield text
            if assembler.stopped:
                finish = "stop"
                break
            if produced >= budget:
                break
        tokens.close()
        tail = assembler.flush()
        if tail:
            yield tail
        return Finished(finish, len(prompt), produced)

    def _utf8_guard(self) -> Utf8Guard:
        if self._guard is None:
            pieces = [self._llm.detokenize([t]) for t in range(self.info.n_vocab)]
            self._guard = Utf8Guard(pieces)
        return self._guard

    def _checked(self, grammar: str) -> str:
        """Parse the grammar once on its own: llama-cpp-python would hand a failed
        parse (NULL sampler) to the sampler chain and crash the process."""
        from llama_cpp import llama_sampler_free, llama_sampler_init_grammar

        sampler = llama_sampler_init_grammar(self._vocab, grammar.encode(), b"root")
        if not sampler:
            raise InvalidRequest("the requested output format does not compile to a grammar")
        llama_sampler_free(sampler)
        return grammar

    def _bias(self, bias: dict[int, float]) -> Callable[[Any, Any], Any]:
        bad = [token for token in bias if not 0 <= token < self.info.n_vocab]
        if bad:
            raise InvalidRequest(
                f"logit_bias names token {bad[0]}, outside this model's vocabulary "
                f"(0..{self.info.n_vocab - 1})",
                param="logit_bias",
            )
        ids = list(bias)
        values = [bias[token] for token in ids]

        def apply(_input_ids: Any, scores: Any) -> Any:
            scores[ids] += values
            return scores

        return apply

    def embed(self, texts: Sequence[str], cancelled: Callable[[], bool]) -> Embeddings:
        """Embed in chunks of one context's worth of tokens (llama-cpp-python's own batch
        size), checking ``cancelled`` between chunks."""
        embedder = self._embedder or self._load_embedder()
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
        """A second context in embedding mode (the weights are mmap-shared with the first)."""
        from llama_cpp import LLAMA_POOLING_TYPE_MEAN, LLAMA_POOLING_TYPE_UNSPECIFIED, Llama

        if self._launch.embedding_only:  # an embedding model declares its own pooling
            pooling = LLAMA_POOLING_TYPE_UNSPECIFIED
        else:
            arch = self._llm.metadata.get("general.architecture", "")
            declared = f"{arch}.pooling_type" in self._llm.metadata
            pooling = LLAMA_POOLING_TYPE_UNSPECIFIED if declared else LLAMA_POOLING_TYPE_MEAN
        n_ctx = min(self._launch.n_ctx, _EMBED_CTX_CAP)
        self._embedder = Llama(
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
        return self._embedder

    def close(self) -> None:
        self._llm.close()
        if self._embedder is not None and self._embedder is not self._llm:
            self._embedder.close()
