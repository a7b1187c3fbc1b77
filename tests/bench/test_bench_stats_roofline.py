"""Pure parts: run summaries, the roofline arithmetic, and reading a model's footprint."""

from __future__ import annotations

from pathlib import Path

import gguf
import pytest

from aria.bench.bandwidth import measure_read_bandwidth
from aria.bench.footprint import read_footprint
from aria.bench.roofline import ModelFootprint, decode_roofline
from aria.bench.stats import summarize
from aria.convert import SyntheticSpec, write_llama_gguf
from aria.errors import BackendUnavailable


def test_summary_median_min_max() -> None:
    odd = summarize([3.0, 1.0, 2.0])
    assert (odd.median, odd.min, odd.max, odd.n) == (2.0, 1.0, 3.0, 3)
    assert summarize([1.0, 2.0, 10.0, 4.0]).median == 3.0
    with pytest.raises(ValueError):
        summarize([])


def _footprint(*, tied: bool) -> ModelFootprint:
    return ModelFootprint(
        weight_bytes=1_000_000,
        embedding_bytes=200_000,
        embedding_row_bytes=100,
        tied_output=tied,
        n_layers=2,
        n_embd_kv=64,
    )


def test_untied_embedding_reads_one_row_tied_reads_all() -> None:
    assert _footprint(tied=True).weight_bytes_per_token == 1_000_000
    assert _footprint(tied=False).weight_bytes_per_token == 1_000_000 - 200_000 + 100


def test_kv_bytes_grow_with_context() -> None:
    footprint = _footprint(tied=True)
    assert footprint.kv_bytes_at(0) == 0
    assert footprint.kv_bytes_at(10) == 2 * 2 * 64 * 2 * 10  # K and V, layers, width, F16


def test_decode_roofline_ceiling_and_fraction() -> None:
    footprint = _footprint(tied=True)
    roof = decode_roofline(
        footprint, bandwidth_bytes_s=10e9, measured_tok_s=5000, prompt_tokens=100, gen_tokens=100
    )
    per_token = 1_000_000 + footprint.kv_bytes_at(150)
    assert roof.bytes_per_token == per_token
    assert roof.ceiling_tok_s == pytest.approx(10e9 / per_token)
    assert roof.fraction == pytest.approx(5000 * per_token / 10e9)
    assert roof.as_dict()["bandwidth_gb_s"] == pytest.approx(10.0)
    with pytest.raises(ValueError):
        decode_roofline(
            footprint, bandwidth_bytes_s=0, measured_tok_s=1, prompt_tokens=1, gen_tokens=1
        )


def test_read_footprint_of_a_generated_model(tmp_path: Path) -> None:
    path = write_llama_gguf(tmp_path / "m.gguf", quant="Q4_0", n_head_kv=2)
    footprint = read_footprint(path)
    reader = gguf.GGUFReader(path)
    assert footprint.weight_bytes == sum(int(t.n_bytes) for t in reader.tensors)
    assert footprint.tied_output  # no output.weight: logits re-read the embedding
    assert footprint.n_layers == 2
    assert footprint.n_embd_kv == 2 * 64
    assert footprint.n_params == SyntheticSpec(quant="Q4_0", n_head_kv=2).params


def test_read_footprint_refuses_a_non_gguf(tmp_path: Path) -> None:
    junk = tmp_path / "junk.gguf"
    junk.write_bytes(b"not a model at all" * 10)
    with pytest.raises(BackendUnavailable, match="not a readable GGUF"):
        read_footprint(junk)


def test_bandwidth_measurement_is_positive_and_validated() -> None:
    measured = measure_read_bandwidth(buffer_mib=64, repeats=1, max_threads=2)
    assert set(measured.by_threads) == {1, 2}
    assert measured.bytes_per_s == max(measured.by_threads.values()) > 1e8
    with pytest.raises(ValueError):
        measure_read_bandwidth(buffer_mib=8)
