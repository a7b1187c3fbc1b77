"""Fuzzing every decoder that reads peer bytes: only the codec's typed errors may escape."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aria.p2p.adverts import AdvertError, build_advert, decode_advert, encode_advert
from aria.p2p.codec import CodecError, FrameDecoder, MessageDecoder, encode_frame
from aria.p2p.handshake import _ADAPTER, _KNOWN, HandshakeMachine, ReplayGuard
from aria.p2p.hardware_summary import HardwareSummary
from aria.p2p.keys import NodeKey, PeerId
from aria.p2p.spec import load_spec

SPEC = load_spec()
KEY, PEER = NodeKey.generate(), NodeKey.generate()
NOW = 1_800_000_000.0
VALID_ADVERT = encode_advert(build_advert(KEY, SPEC, now=NOW, seq=1), KEY, SPEC)

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4)
    ),
    max_leaves=20,
)
messages = st.fixed_dictionaries(
    {"type": st.sampled_from(sorted(_KNOWN) + ["x", ""])},
    optional={"record": json_values, "reason": json_values, "detail": json_values},
)
fuzz = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@fuzz
@given(st.lists(st.binary(max_size=64), max_size=8), st.integers(1, 128))
def test_frame_decoder_only_raises_codec_error(chunks: list[bytes], limit: int) -> None:
    decoder = FrameDecoder(limit)
    try:
        for chunk in chunks:
            for frame in decoder.feed(chunk):
                assert len(frame) <= limit
        decoder.close()
    except CodecError:
        pass


@fuzz
@given(st.one_of(st.binary(max_size=200), messages.map(lambda m: json.dumps(m).encode())))
def test_message_decoder_only_raises_codec_error(payload: bytes) -> None:
    decoder = MessageDecoder(_ADAPTER, _KNOWN, SPEC.handshake_frame)
    with contextlib.suppress(CodecError):
        decoder.feed(encode_frame(payload, 1 << 20))


@fuzz
@given(st.lists(st.binary(max_size=300), max_size=5), st.booleans())
def test_handshake_machine_never_raises(chunks: list[bytes], initiator: bool) -> None:
    machine = HandshakeMachine(
        initiator=initiator,
        key=KEY,
        agent="fuzz",
        hardware=HardwareSummary(),
        expected_peer=PeerId(PEER.peer_id),
        replay=ReplayGuard(16, 120.0),
        spec=SPEC,
    )
    machine.start(NOW)
    for chunk in chunks:
        machine.receive_data(chunk, NOW)
    machine.receive_eof(NOW)
    assert machine.done


@fuzz
@given(
    st.one_of(
        st.binary(max_size=400),
        json_values.map(lambda v: json.dumps(v).encode()),
        st.tuples(st.integers(0, len(VALID_ADVERT) - 1), st.integers(0, 255)).map(
            lambda t: VALID_ADVERT[: t[0]] + bytes([t[1]]) + VALID_ADVERT[t[0] + 1 :]
        ),
    )
)
def test_advert_decoder_only_raises_advert_error(value: bytes) -> None:
    with contextlib.suppress(AdvertError):
        decode_advert(value, SPEC, now=NOW)


def test_deeply_nested_json_is_a_typed_error() -> None:
    deep = b"[" * 100_000 + b"]" * 100_000
    with pytest.raises(CodecError):
        MessageDecoder(_ADAPTER, _KNOWN, 1 << 20).feed(encode_frame(deep, 1 << 20))
    with pytest.raises(AdvertError):
        decode_advert(b'{"kind":"advert","payload":' + deep + b"}", SPEC, now=NOW)


class _ChunkStream:
    """Just enough of a trio stream for the control server to read a request from."""

    def __init__(self, chunks: list[bytes]) -> None:
        self._chunks = list(chunks)

    async def receive_some(self, _max: int) -> bytes:
        return self._chunks.pop(0) if self._chunks else b""


@settings(max_examples=150, deadline=None)
@given(st.lists(st.binary(max_size=80), max_size=4))
def test_control_server_answers_any_bytes_with_an_error(chunks: list[bytes]) -> None:
    import trio

    from aria.config import AriaPaths
    from aria.p2p.control import ControlServer

    server = ControlServer(AriaPaths(Path("/nonexistent")), "peer", {}, token="t" * 20)
    reply = trio.run(server._respond, _ChunkStream(chunks))
    assert (
        isinstance(reply, dict)
        and reply["ok"] is False
        and reply["error"]["code"] in {"bad_request", "unauthorized"}
    )
