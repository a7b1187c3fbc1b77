"""Worker options: the tier -> engine mapping, the wire format, bitnet.cpp detection."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from aria.backends import (
    GenerationJob,
    GrammarSpec,
    WorkerLaunch,
    choose_launch,
    find_bitnet_server,
)
from aria.backends.protocol import decode, encode, error_from_wire, error_to_wire
from aria.catalog import CatalogEntry, load_catalog
from aria.catalog.entries import Tier
from aria.errors import BackendCrashed, BackendUnavailable, ConfigError, ContextLengthExceeded


def entry(tier: Tier, quant: str = "Q4_K_M", one_bit: bool = False) -> CatalogEntry:
    base = load_catalog().default
    return base.model_copy(update={"tier": tier, "quantization": quant, "native_1bit": one_bit})


def test_tiers_map_to_engines(tmp_path: Path) -> None:
    path, server = tmp_path / "m.gguf", tmp_path / "bitnet-llama-server"
    common: dict[str, Any] = {"threads": 2, "context_length": None}
    quality = choose_launch(
        entry(Tier.QUALITY), path, gpu_available=True, bitnet_server=server, **common
    )
    assert (quality.engine, quality.n_gpu_layers) == ("llama", 0)
    fast = choose_launch(
        entry(Tier.ACCELERATED), path, gpu_available=True, bitnet_server=None, **common
    )
    assert fast.n_gpu_layers == -1
    cpu = choose_launch(
        entry(Tier.ACCELERATED), path, gpu_available=False, bitnet_server=None, **common
    )
    assert cpu.n_gpu_layers == 0
    # TQ1_0/TQ2_0 files (converted here) run on ARIA's llama.cpp, where the conversion is
    # checked, whether or not a bitnet.cpp server is installed: the format picks the engine.
    ternary = entry(Tier.EFFICIENCY, "TQ2_0", one_bit=True)
    for server_or_none in (server, None):
        launch = choose_launch(
            ternary, path, gpu_available=False, bitnet_server=server_or_none, **common
        )
        assert launch.engine == "llama"
    # A non-ternary efficiency model stays on llama.cpp even with bitnet.cpp around.
    small = entry(Tier.EFFICIENCY, "Q4_K_M")
    assert (
        choose_launch(small, path, gpu_available=False, bitnet_server=server, **common).engine
        == "llama"
    )


def test_bitnet_only_format_needs_the_bitnet_server(tmp_path: Path) -> None:
    i2s = entry(Tier.EFFICIENCY, "I2_S", one_bit=True)
    common: dict[str, Any] = {"threads": 2, "context_length": None, "gpu_available": False}
    with pytest.raises(BackendUnavailable, match="I2_S.*aria engine install bitnet"):
        choose_launch(i2s, tmp_path / "m.gguf", bitnet_server=None, **common)
    server = tmp_path / "bitnet-llama-server"
    launch = choose_launch(i2s, tmp_path / "m.gguf", bitnet_server=server, **common)
    assert launch.engine == "bitnet-server"


def test_context_window_is_capped_unless_configured(tmp_path: Path) -> None:
    big = entry(Tier.QUALITY).model_copy(update={"context_length": 131072})
    args: dict[str, Any] = {"threads": 1, "gpu_available": False, "bitnet_server": None}
    assert choose_launch(big, tmp_path, context_length=None, **args).n_ctx == 8192
    assert choose_launch(big, tmp_path, context_length=32768, **args).n_ctx == 32768


def test_launch_and_job_round_trip_the_wire() -> None:
    launch = WorkerLaunch(model_path="/m.gguf", n_ctx=512, threads=3, n_gpu_layers=-1)
    assert WorkerLaunch.from_json(launch.argv()[-1]) == launch
    job = GenerationJob(
        messages=({"role": "user", "content": "hé"},),
        max_tokens=5,
        stop=("x",),
        seed=7,
        logit_bias={12: -100.0},
        grammar=GrammarSpec(kind="json_schema", schema={"type": "object"}),
        isolated=True,
    )
    assert GenerationJob.from_wire(decode(encode({"job": job.to_wire()}))["job"]) == job
    with pytest.raises(ValueError):
        GenerationJob()


def test_errors_keep_their_type_across_the_wire() -> None:
    wire = decode(encode(error_to_wire(3, ContextLengthExceeded("too long"))))
    assert isinstance(error_from_wire(wire), ContextLengthExceeded)
    assert isinstance(error_from_wire({"code": "weird", "message": "?"}), BackendCrashed)
    with pytest.raises(BackendCrashed):
        decode(b"not json\n")


def test_bitnet_server_found_on_path_or_configured(tmp_path: Path) -> None:
    assert find_bitnet_server(None, path_env=str(tmp_path)) is None
    binary = tmp_path / "llama-server-bitnet"
    binary.write_text("#!/bin/sh\n")
    binary.chmod(0o755)
    assert find_bitnet_server(None, path_env=str(tmp_path)) == binary.resolve()
    assert find_bitnet_server(str(binary)) == binary.resolve()
    with pytest.raises(ConfigError, match="not an executable"):
        find_bitnet_server(str(tmp_path / "missing"))
    os.chmod(binary, 0o644)
    with pytest.raises(ConfigError):
        find_bitnet_server(str(binary))
