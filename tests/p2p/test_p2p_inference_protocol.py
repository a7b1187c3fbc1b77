"""The remote-inference protocol's pure parts: admission and decoder robustness."""

from __future__ import annotations

import contextlib
import json
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from aria.config import AriaPaths, load_settings
from aria.consent import Ask, Contract, LendTerms
from aria.p2p.codec import CodecError, End
from aria.p2p.inference import Admission, Chunk, Reject, Request, admit, decoder, encode
from aria.p2p.local import consent_summary

BODY = {"model": "m", "messages": [{"role": "user", "content": "hi"}], "stream": True}
SHARED = ("m",)


NOW = datetime(2026, 12, 4, 12, 0)


def _admit(contract: Contract, jobs: int, body: dict[str, Any]) -> Admission:
    return admit(contract, Ask("inference", "12D3KooWpeer", active_jobs=jobs), body, SHARED, NOW)


def _lending(**lend: Any) -> Contract:
    return Contract(lend=LendTerms(tasks=("inference",), **lend))


def test_nothing_lent_by_default_rejects_with_its_reason() -> None:
    decision = _admit(Contract(), 0, BODY)
    assert decision.body is None and decision.reject is not None
    assert decision.reject.reason == "task_not_allowed"
    assert _admit(Contract(), 0, {"junk": 1}).reject.reason == "task_not_allowed"  # type: ignore[union-attr]


def test_limits_busy_and_too_many_tokens() -> None:
    contract = _lending(max_jobs=1, max_tokens=64)
    assert _admit(contract, 1, BODY).reject.reason == "busy"  # type: ignore[union-attr]
    over = _admit(contract, 0, {**BODY, "max_tokens": 65}).reject
    assert over is not None and over.reason == "too_many_tokens"
    assert _admit(contract, 0, {**BODY, "max_tokens": "x"}).reject.reason == "bad_request"  # type: ignore[union-attr]
    assert _admit(contract, 0, {"model": "m"}).reject.reason == "bad_request"  # type: ignore[union-attr]
    both = {**BODY, "prompt": "x"}
    assert _admit(contract, 0, both).reject.reason == "bad_request"  # type: ignore[union-attr]
    completion = {"model": "m", "prompt": "Once upon"}
    assert _admit(contract, 0, completion).body == {**completion, "max_tokens": 64}


def test_only_models_this_node_shares_and_its_contract_lends_may_be_named() -> None:
    contract = _lending()
    for model in ("auto", "local-only", "not-installed"):
        refused = _admit(contract, 0, {**BODY, "model": model}).reject
        assert refused is not None and refused.reason == "no_model"
    admitted = _admit(contract, 0, {**BODY, "model": "M"})
    assert admitted.body is not None and admitted.contract == contract.sha256
    narrow = _lending(models=("other",))
    assert _admit(narrow, 0, BODY).reject.reason == "model_not_allowed"  # type: ignore[union-attr]


def test_an_admitted_request_gets_the_token_limit_when_it_names_none() -> None:
    contract = _lending(max_tokens=64)
    assert _admit(contract, 0, BODY).body == {**BODY, "max_tokens": 64, "memory": False}
    assert _admit(contract, 0, {**BODY, "max_completion_tokens": 10}).body == {
        **BODY,
        "max_tokens": 10,
        "memory": False,
    }


def test_a_peer_request_never_uses_the_serving_operators_memory() -> None:
    asked = {**BODY, "memory": True, "conversation_id": "theirs"}
    admitted = _admit(_lending(), 0, asked).body
    assert admitted is not None and admitted["memory"] is False
    assert "conversation_id" not in admitted


def test_messages_round_trip() -> None:
    wire = encode(Request(body=BODY)) + encode(Chunk(data='{"x":1}')) + encode(End())
    assert decoder().feed(wire) == [Request(body=BODY), Chunk(data='{"x":1}'), End()]


messages = st.fixed_dictionaries(
    {"type": st.sampled_from(["request", "chunk", "done", "reject", "error", "end", "x"])},
    optional={"reason": st.text(max_size=20), "data": st.text(max_size=20), "body": st.none()},
)


@given(st.one_of(st.binary(max_size=200), messages.map(lambda m: json.dumps(m).encode())))
def test_decoder_only_raises_codec_error(payload: bytes) -> None:
    with contextlib.suppress(CodecError):
        decoder().parse(payload)


def test_a_reject_needs_a_known_reason() -> None:
    frame = json.dumps({"type": "reject", "reason": "because", "message": "no"}).encode()
    with pytest.raises(CodecError):
        decoder().parse(frame)
    assert Reject(reason="busy", message="x").reason == "busy"


def test_node_share_signs_a_contract_that_feeds_the_advert_summary(aria_home: Path) -> None:
    from typer.testing import CliRunner

    from aria.cli.commands import register
    from aria.cli.main import app
    from aria.consent import load_contract
    from aria.p2p.identity import load_identity

    register(app)
    runner = CliRunner()
    paths = AriaPaths(aria_home)

    def contract() -> Contract:
        loaded = load_contract(paths, load_identity(paths).peer_id)
        assert loaded is not None and loaded.signed
        return loaded.contract

    assert consent_summary(Contract()).share_inference is False  # nothing lent by default
    shared = runner.invoke(app, ["node", "share", "--inference", "on", "--rpc", "on"])
    assert shared.exit_code == 0, shared.output
    assert "inference sharing on" in shared.output and "rpc sharing on" in shared.output
    summary = consent_summary(contract())
    assert summary.share_inference and summary.share_rpc and summary.max_remote_jobs == 1
    assert summary.contract == contract().sha256 and summary.contract_version == contract().version
    assert runner.invoke(app, ["node", "share", "--rpc", "off"]).exit_code == 0
    assert contract().lend.tasks == ("inference",)
    assert consent_summary(contract()).share_library is False
    assert runner.invoke(app, ["node", "share", "--library", "on"]).exit_code == 0
    assert contract().lend.tasks == ("inference", "library")
    assert consent_summary(contract()).share_library  # the advert says so, from the contract
    assert runner.invoke(app, ["node", "share", "--library", "off"]).exit_code == 0
    assert not consent_summary(contract()).share_library
    bad = runner.invoke(app, ["node", "share", "--inference", "maybe"])
    assert bad.exit_code != 0 and contract().lends("inference")
    assert load_settings(paths).consent.share_inference is False  # the switches are not used
