"""From a job to prompt text, and the context-window check (shared by all engines).

Chat messages are rendered with the model's own chat template from its GGUF
metadata, through llama-cpp-python's Jinja2 formatter (sandboxed, Transformers-
compatible). Importing this module does not load llama.cpp; building a
:class:`ChatTemplate` does.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from aria.backends.protocol import GenerationJob
from aria.backends.toolcalls import prepare_messages
from aria.errors import ContextLengthExceeded, InvalidRequest

__all__ = ["ChatTemplate", "RenderedPrompt", "generation_budget"]


@dataclass(frozen=True)
class RenderedPrompt:
    text: str
    # True when the template already wrote BOS and friends (do not add them again).
    has_special: bool


class ChatTemplate:
    """A model's chat template, or none (then only raw completions work)."""

    def __init__(self, source: str | None, *, bos_token: str, eos_token: str) -> None:
        self.source = source
        self._formatter: Any = None  # llama-cpp-python's Jinja2ChatFormatter
        if source:
            from llama_cpp.llama_chat_format import Jinja2ChatFormatter

            self._formatter = Jinja2ChatFormatter(source, eos_token=eos_token, bos_token=bos_token)

    def render(self, job: GenerationJob) -> RenderedPrompt:
        """The prompt text for ``job``.

        Raises:
            InvalidRequest: a chat job for a model without a template, or the
                template refused the messages (e.g. roles out of order).
        """
        if job.prompt is not None:
            return RenderedPrompt(job.prompt, has_special=False)
        if self._formatter is None or self.source is None:
            raise InvalidRequest(
                "this model has no chat template; use /v1/completions with a raw prompt"
            )
        messages = prepare_messages(job.messages or (), job.tools, self.source)
        try:
            result = self._formatter(messages=messages, tools=list(job.tools) or None)
        except Exception as exc:  # jinja2 errors and the template's raise_exception()
            raise InvalidRequest(
                f"the model's chat template rejected the messages: {exc}"
            ) from None
        return RenderedPrompt(result.prompt, has_special=True)


def generation_budget(prompt_tokens: int, max_tokens: int | None, n_ctx: int) -> int:
    """How many tokens may be generated; OpenAI's rule: the prompt plus an explicit
    ``max_tokens`` must fit the window, no silent truncation.

    Raises:
        ContextLengthExceeded: the prompt leaves no room, or ``max_tokens`` does not fit.
    """
    room = n_ctx - prompt_tokens
    if room <= 0:
        raise ContextLengthExceeded(
            f"the prompt is {prompt_tokens} tokens but this model's context window is "
            f"{n_ctx} tokens; shorten the messages",
            param="messages",
        )
    if max_tokens is None:
        return room
    if max_tokens > room:
        raise ContextLengthExceeded(
            f"the prompt ({prompt_tokens} tokens) plus max_tokens ({max_tokens}) exceeds this "
            f"model's context window of {n_ctx} tokens",
            param="max_tokens",
        )
    return max_tokens
