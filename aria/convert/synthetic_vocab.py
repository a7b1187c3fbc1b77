"""A small but real SentencePiece-style (llama) vocabulary for generated test models.

llama.cpp's SPM tokenizer merges adjacent pieces whenever the concatenation is in the
vocabulary (highest score first) and falls back to the 256 ``<0xNN>`` byte tokens for
anything else, so any UTF-8 text round-trips. The word list lives in
``data/synthetic_words.txt``; each word contributes ``▁word`` and all its prefixes so the
merges can always reach the whole word.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from importlib import resources

__all__ = [
    "BOS_TOKEN",
    "CHATML_TEMPLATE",
    "EOS_TOKEN",
    "IM_END_TOKEN",
    "IM_START_TOKEN",
    "UNK_TOKEN",
    "SyntheticVocab",
    "build_vocab",
]

UNK_TOKEN = "<unk>"
BOS_TOKEN = "<s>"
EOS_TOKEN = "</s>"
IM_START_TOKEN = "<|im_start|>"
IM_END_TOKEN = "<|im_end|>"
_SPACE = "\u2581"  # SentencePiece's visible space

# gguf.TokenType values (kept as ints so this module imports nothing heavy).
_NORMAL, _UNKNOWN, _CONTROL, _BYTE = 1, 2, 3, 6

CHATML_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)


@dataclass(frozen=True)
class SyntheticVocab:
    """Parallel lists as GGUF stores them (``tokenizer.ggml.tokens/scores/token_type``)."""

    tokens: tuple[str, ...]
    scores: tuple[float, ...]
    types: tuple[int, ...]

    def id_of(self, token: str) -> int:
        return self.tokens.index(token)

    def __len__(self) -> int:
        return len(self.tokens)


def _words() -> list[str]:
    text = resources.files("aria.convert").joinpath("data/synthetic_words.txt").read_text("utf-8")
    words: list[str] = []
    for line in text.splitlines():
        words.extend(line.split("#", 1)[0].split())
    return words


def _pieces(words: list[str]) -> list[str]:
    """Single characters first, then word prefixes; order decides the merge scores."""
    pieces: dict[str, None] = {_SPACE: None}
    for code in range(0x21, 0x7F):
        pieces.setdefault(chr(code), None)
    for word in words:
        spelled = _SPACE + word
        for end in range(2, len(spelled) + 1):
            pieces.setdefault(spelled[:end], None)
    return list(pieces)


@cache
def build_vocab() -> SyntheticVocab:
    """The vocabulary: 5 control/unknown tokens, 256 byte tokens, then the pieces."""
    tokens: list[str] = [UNK_TOKEN, BOS_TOKEN, EOS_TOKEN, IM_START_TOKEN, IM_END_TOKEN]
    types: list[int] = [_UNKNOWN, _CONTROL, _CONTROL, _CONTROL, _CONTROL]
    scores: list[float] = [0.0] * len(tokens)
    for byte in range(256):
        tokens.append(f"<0x{byte:02X}>")
        types.append(_BYTE)
        scores.append(0.0)
    # Longer pieces get higher scores so SPM prefers merging into whole words.
    for index, piece in enumerate(_pieces(_words())):
        tokens.append(piece)
        types.append(_NORMAL)
        scores.append(float(len(piece)) - index * 1e-4)
    return SyntheticVocab(tuple(tokens), tuple(scores), tuple(types))
