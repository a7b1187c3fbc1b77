"""Both sides of the inference exchange and the tunnel's answer, as machines over the
in-memory link (no sockets); the request body built from a job; peers' errors."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from aria.api.convert import chat_job
from aria.api.schemas import ChatCompletionRequest
from aria.backends import GenerationJob, GrammarSpec
from aria.errors import (
    AuthenticationError,
    BackendUnavailable,
    ConsentRefused,
    ContextLengthExceeded,
    PeerError,
)
from aria.p2p.codec import End, Violation, encode_frame
from aria.p2p.inference import ErrorInfo, Failed, Reject, Request, encode, peer_failure
from aria.p2p.inference import request_body as body_of
from aria.p2p.inference_machines import (
    Broken,
    Cut,
    Declined,
    Delivered,
    Finished,
    InferenceCall,
    InferenceService,
    Left,
    Requested,
    TimedOut,
)
from aria.p2p.tunnel_protocol import (
    Accept,
    Accepted,
    Closed,
    Refused,
    TunnelDial,
    encode_answer,
)
from aria.p2p.tunnel_protocol import Broken as DialBroken
from aria.p2p.tunnel_protocol import TimedOut as DialTimedOut
from tests.p2p.sim import FakeClock, Link

BODY = {"model": "m", "messages": [{"role": "user", "content": "hi"}], "stream": True}


def _pair() -> tuple[Link, InferenceCall, InferenceService]:
    call, service = InferenceCall(Request(body=BODY)), InferenceService()
    link = Link(call, service, FakeClock())
    link.start()
    return link, call, service


def test_a_whole_answer_crosses_in_order() -> None:
    link, call, service = _pair()
    link.run()
    assert link.events_b == [Requested(Request(body=BODY))]
    service.send('{"x":1}')
    service.send("[DONE]")
    service.finish()
    link.run()
    assert link.events_a == [Delivered('{"x":1}'), Delivered("[DONE]"), Finished()]
    assert call.done and service.done


def test_a_refusal_and_a_failure_reach_the_requester_with_their_error() -> None:
    link, call, service = _pair()
    link.run()
    service.refuse(Reject(reason="busy", message="full"))
    link.run()
    assert link.events_a == [Declined(Reject(reason="busy", message="full"))] and call.done
    link, call, service = _pair()
    link.run()
    error = ErrorInfo.of(ContextLengthExceeded("9000 tokens", param="messages"))
    service.send('{"x":1}')
    service.finish(Failed(reason="failed", message="too long", error=error))
    link.run()
    assert link.events_a[0] == Delivered('{"x":1}')
    declined = link.events_a[1]
    assert isinstance(declined, Declined) and isinstance(declined.frame, Failed)
    assert declined.frame.error == error


def test_the_requester_waits_300_s_for_a_first_chunk_then_120_s_between_chunks() -> None:
    link, call, service = _pair()
    link.run()
    link.clock.advance(299)
    assert call.handle_timer(link.clock()) == []
    service.send("a")
    link.run()
    link.clock.advance(119)
    assert call.handle_timer(link.clock()) == []
    link.clock.advance(2)
    assert call.handle_timer(link.clock()) == [Cut("sent nothing for 120 s")]


def test_a_stream_cut_before_end_is_a_cut_on_one_side_and_left_on_the_other() -> None:
    link, call, service = _pair()
    link.run()
    service.send("a")
    link.run()
    assert call.receive_eof(link.clock()) == [Cut("hung up before finishing its answer")]
    assert service.receive_data(b"x", link.clock()) == [Left()]
    assert service.receive_eof(link.clock()) == [Left()]


def test_the_server_times_out_a_slow_request_and_refuses_garbage() -> None:
    clock = FakeClock()
    slow = InferenceService()
    slow.start(clock())
    clock.advance(10.5)
    assert slow.handle_timer(clock()) == [TimedOut()] and slow.done
    bad = InferenceService()
    bad.start(clock())
    events = bad.receive_data(encode(End()), clock())
    assert isinstance(events[0], Broken) and events[0].violation is Violation.UNKNOWN_MESSAGE
    early = InferenceService()
    early.start(clock())
    events = early.receive_eof(clock())
    assert isinstance(events[0], Broken) and events[0].violation is Violation.TRUNCATED


@given(st.binary(max_size=300))
def test_any_bytes_give_events_never_an_exception(data: bytes) -> None:
    clock = FakeClock()
    call, service = InferenceCall(Request(body=BODY)), InferenceService()
    call.start(clock())
    service.start(clock())
    for called in call.receive_data(data, clock()):
        assert isinstance(called, Delivered | Finished | Declined | Broken | Cut)
    for served in service.receive_data(data, clock()):
        assert isinstance(served, Requested | Broken)


def test_the_tunnel_answer_is_read_alone_and_what_follows_is_kept() -> None:
    clock = FakeClock()
    dial = TunnelDial(60)
    dial.start(clock())
    answer = encode_answer(Accept())
    assert dial.receive_data(answer[:3], clock()) == []
    assert dial.receive_data(answer[3:] + b"\x01rpc", clock()) == [Accepted(b"\x01rpc")]
    refused = TunnelDial(60)
    refused.start(clock())
    frame = encode_answer(Reject(reason="peer_not_allowed", message="no")) + encode_answer(End())
    assert refused.receive_data(frame, clock()) == [
        Refused(Reject(reason="peer_not_allowed", message="no"))
    ]
    big = TunnelDial(60)
    big.start(clock())
    assert isinstance(big.receive_data((5000).to_bytes(4, "big"), clock())[0], DialBroken)
    cut = TunnelDial(60)
    cut.start(clock())
    assert cut.receive_eof(clock()) == [Closed()]
    late = TunnelDial(60)
    late.start(clock())
    clock.advance(61)
    assert late.handle_timer(clock()) == [DialTimedOut(60)]
    garbage = TunnelDial(60)
    garbage.start(clock())
    assert isinstance(garbage.receive_data(encode_frame(b"{}", 100), clock())[0], DialBroken)


def test_the_body_sent_to_a_peer_is_what_this_node_would_run() -> None:
    request = ChatCompletionRequest.model_validate(
        {
            "model": "auto",
            "messages": [{"role": "user", "content": "weather?"}],
            "tools": [
                {"type": "function", "function": {"name": "get", "parameters": {"type": "object"}}}
            ],
            "tool_choice": {"type": "function", "function": {"name": "get"}},
            "parallel_tool_calls": False,
            "max_completion_tokens": 30,
            "stop": ["END"],
            "seed": 7,
            "temperature": 0.2,
            "user": "alice@example.com",
        }
    )
    job, _ = chat_job(request)
    body = body_of(job, "tiny")
    assert "user" not in body and body["model"] == "tiny" and body["stream"] is True
    assert body["stream_options"] == {"include_usage": True}
    again, _ = chat_job(ChatCompletionRequest.model_validate(body))
    assert again == job  # the peer's API turns it into the very same job
    completion = GenerationJob(prompt="Once", max_tokens=5, grammar=GrammarSpec(kind="json_object"))
    assert body_of(completion, "m")["prompt"] == "Once"
    assert body_of(completion, "m")["response_format"] == {"type": "json_object"}


def test_a_peer_client_error_stays_itself_and_anything_else_lets_the_chain_move_on() -> None:
    error = ErrorInfo.of(ContextLengthExceeded("the prompt is 9000 tokens", param="messages"))
    raised = peer_failure("P", Failed(reason="failed", message="x", error=error))
    assert isinstance(raised, ContextLengthExceeded) and raised.http_status == 400
    assert raised.param == "messages" and not raised.falls_back
    hop = ErrorInfo.of(AuthenticationError("bad key"))
    assert type(peer_failure("P", Failed(reason="failed", message="x", error=hop))) is PeerError
    down = ErrorInfo.of(BackendUnavailable("no worker"))
    assert peer_failure("P", Failed(reason="no_api", message="x", error=down)).falls_back
    refused = peer_failure("P", Reject(reason="task_not_allowed", message="no"))
    assert isinstance(refused, ConsentRefused) and "refused the request" in refused.message
