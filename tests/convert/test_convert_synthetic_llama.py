"""Every synthetic format loads, generates and chats in llama-cpp-python."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from aria.convert import SyntheticSpec, write_gguf
from aria.convert.synthetic import Arch

llama_cpp = pytest.importorskip("llama_cpp")

CASES = [
    ("llama", "F16"),
    ("llama", "Q8_0"),
    ("llama", "Q4_0"),
    ("bitnet", "TQ1_0"),
    ("bitnet", "TQ2_0"),
]


def _load(tmp_path: Path, arch: Arch, quant: str) -> Any:
    target = tmp_path / f"{arch}-{quant}.gguf"
    path = write_gguf(target, SyntheticSpec(arch=arch, quant=quant))
    return llama_cpp.Llama(str(path), n_ctx=256, n_threads=2, seed=0, verbose=False)


@pytest.mark.parametrize(("arch", "quant"), CASES)
def test_loads_and_generates_finite_tokens(tmp_path: Path, arch: Arch, quant: str) -> None:
    llm = _load(tmp_path, arch, quant)
    prompt = llm.tokenize(b"Hello world, the capital of France is")
    generated: list[int] = []
    for token in llm.generate(prompt, temp=0.0):
        generated.append(token)
        pointer = llama_cpp.llama_get_logits_ith(llm.ctx, -1)  # what the sampler just saw
        logits = np.ctypeslib.as_array(pointer, shape=(llm.n_vocab(),))
        assert np.isfinite(logits).all()
        assert np.ptp(logits) > 0  # real, distinct scores
        if len(generated) == 12:
            break
    assert len(generated) == 12
    assert all(0 <= t < llm.n_vocab() for t in generated)


@pytest.mark.parametrize(("arch", "quant"), [CASES[1], CASES[4]])
def test_greedy_generation_is_reproducible(tmp_path: Path, arch: Arch, quant: str) -> None:
    first = _load(tmp_path, arch, quant)("Hello", max_tokens=8, temperature=0.0)
    second = _load(tmp_path, arch, quant)("Hello", max_tokens=8, temperature=0.0)
    assert first["choices"][0]["text"] == second["choices"][0]["text"]


def test_tokenizer_round_trips_and_knows_chatml(tmp_path: Path) -> None:
    llm = _load(tmp_path, "llama", "Q8_0")
    text = "Hello world, the capital of France is Paris. Ünïcödé ✓"
    tokens = llm.tokenize(text.encode(), add_bos=False)
    assert llm.detokenize(tokens).decode().strip() == text
    assert len(llm.tokenize(b"the", add_bos=False)) == 1  # "▁the": whole-word merge
    assert len(llm.tokenize(b"<|im_start|>", add_bos=False, special=True)) == 1


def test_chat_completion_uses_the_template(tmp_path: Path) -> None:
    llm = _load(tmp_path, "llama", "Q4_0")
    reply = llm.create_chat_completion(
        messages=[{"role": "user", "content": "What is the capital of France?"}],
        max_tokens=6,
        temperature=0.0,
    )
    assert reply["choices"][0]["message"]["role"] == "assistant"
    usage = reply["usage"]
    # ChatML wrapping: <s> <|im_start|> user \n ... <|im_end|> \n <|im_start|> assistant \n
    bare = len(llm.tokenize(b"What is the capital of France?"))
    assert usage["prompt_tokens"] >= bare + 6
    assert 1 <= usage["completion_tokens"] <= 6
