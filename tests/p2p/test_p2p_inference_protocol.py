"""The remote-inference protocol's pure parts: admission and decoder robustness."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from aria.config import AriaPaths, ConsentSettings, load_settings
from aria.p2p.codec import CodecError, End
from aria.p2p.inference import Chunk, Reject, Request, admit, decoder, encode
from aria.p2p.local import consent_summary

BODY = {"model": "m", "messages": [{"role": "user", "content": "hi"}], "stream": True}
SHARED = ("m",)


def test_consent_off_by_default_rejects_with_its_reason() -> None:
    decision = admit(ConsentSettings(), 0, BODY, SHARED)
    assert decision.body is None and decision.reject is not None
    assert decision.reject.reason == "consent_off"


def test_limits_busy_and_too_many_tokens() -> None:
    consent = ConsentSettings(share_inference=True, max_remote_jobs=1, max_remote_tokens=64)
    assert admit(consent, 1, BODY, SHARED).reject.reason == "busy"  # type: ignore[union-attr]
    over = admit(consent, 0, {**BODY, "max_tokens": 65}, SHARED).reject
    assert over is not None and over.reason == "too_many_tokens"
    assert admit(consent, 0, {**BODY, "max_tokens": "x"}, SHARED).reject.reason == "bad_request"  # type: ignore[union-attr]
    assert admit(consent, 0, {"model": "m"}, SHARED).reject.reason == "bad_request"  # type: ignore[union-attr]
    both = {**BODY, "prompt": "x"}
    assert admit(consent, 0, both, SHARED).reject.reason == "bad_request"  # type: ignore[union-attr]
    completion = {"model": "m", "prompt": "Once upon"}
    assert admit(consent, 0, completion, SHARED).body == {**completion, "max_tokens": 64}


def test_only_models_this_node_shares_may_be_named() -> None:
    consent = ConsentSettings(share_inference=True)
    for model in ("auto", "local-only", "not-installed"):
        refused = admit(consent, 0, {**BODY, "model": model}, SHARED).reject
        assert refused is not None and refused.reason == "no_model"
    assert admit(consent, 0, {**BODY, "model": "M"}, SHARED).body is not None


def test_an_admitted_request_gets_the_token_limit_when_it_names_none() -> None:
    consent = ConsentSettings(share_inference=True, max_remote_tokens=64)
    assert admit(consent, 0, BODY, SHARED).body == {**BODY, "max_tokens": 64, "memory": False}
    assert admit(consent, 0, {**BODY, "max_completion_tokens": 10}, SHARED).body == {
        **BODY,
        "max_tokens": 10,
        "memory": False,
    }


def test_a_peer_request_never_uses_the_serving_operators_memory() -> None:
    consent = ConsentSettings(share_inference=True)
    asked = {**BODY, "memory": True, "conversation_id": "theirs"}
    admitted = admit(consent, 0, asked, SHARED).body
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


def test_node_share_persists_consent_and_feeds_the_advert_summary(aria_home: Path) -> None:
    from typer.testing import CliRunner

    from aria.cli.commands import register
    from aria.cli.main import app

    register(app)
    runner = CliRunner()
    paths = AriaPaths(aria_home)
    assert consent_summary(load_settings(paths)).share_inference is False  # off by default
    shared = runner.invoke(app, ["node", "share", "--inference", "on", "--rpc", "on"])
    assert shared.exit_code == 0, shared.output
    assert "inference sharing on" in shared.output and "rpc sharing on" in shared.output
    summary = consent_summary(load_settings(paths))
    assert summary.share_inference and summary.share_rpc and summary.max_remote_jobs == 1
    assert runner.invoke(app, ["node", "share", "--rpc", "off"]).exit_code == 0
    assert load_settings(paths).consent.share_rpc is False
    assert load_settings(paths).consent.share_inference is True
    bad = runner.invoke(app, ["node", "share", "--inference", "maybe"])
    assert bad.exit_code != 0 and load_settings(paths).consent.share_inference is True
