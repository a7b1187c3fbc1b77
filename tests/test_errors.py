"""The error tree's one wire form: every class survives a process boundary as itself."""

from __future__ import annotations

import json

import pytest

from aria import errors
from aria.errors import (
    AriaError,
    BackendCrashed,
    BackendUnavailable,
    ConsentRefused,
    ContextLengthExceeded,
    InvalidRequest,
    ModelNotInstalled,
    PeerError,
    PlacementRefused,
    RateLimited,
    RequestError,
    RequestFailed,
    ServerBusy,
    from_wire,
)


def _tree() -> list[type[AriaError]]:
    found, pending = [], [AriaError]
    while pending:
        cls = pending.pop()
        found.append(cls)
        pending.extend(cls.__subclasses__())
    return [cls for cls in found if cls.__module__ == "aria.errors" and cls is not AriaError]


@pytest.mark.parametrize(
    "cls", [c for c in _tree() if c is not RequestError], ids=lambda cls: cls.__name__
)
def test_every_class_crosses_a_boundary_as_itself(cls: type[AriaError]) -> None:
    sent = cls("it went wrong", param="messages.0")
    wire = json.loads(json.dumps(sent.to_wire()))  # what really travels is JSON
    back = from_wire(wire)
    assert type(back) is cls
    assert (back.message, back.param, back.code) == ("it went wrong", "messages.0", cls.code)
    assert (back.http_status, back.openai_type) == (cls.http_status, cls.openai_type)


def test_codes_name_one_class_each_and_the_most_derived_wins() -> None:
    # InvalidRequest shares its code with its parent: the specific class is what comes back.
    assert InvalidRequest.code == RequestError.code
    assert type(from_wire(RequestError("x").to_wire())) is InvalidRequest
    codes = [cls.code for cls in _tree() if cls is not RequestError]
    assert len(codes) == len(set(codes)), "two error classes share a code"


def test_a_peer_client_error_keeps_status_type_code_and_param() -> None:
    wire = ContextLengthExceeded("the prompt is 9000 tokens", param="messages").to_wire()
    assert wire == {
        "code": "context_length_exceeded",
        "message": "the prompt is 9000 tokens",
        "param": "messages",
        "type": "invalid_request_error",
        "status": 400,
    }
    back = from_wire(wire, fallback=PeerError)
    assert isinstance(back, ContextLengthExceeded) and not back.falls_back


def test_an_unknown_code_keeps_everything_on_the_fallback() -> None:
    back = from_wire(
        {"code": "brand_new", "message": "m", "status": 418, "type": "teapot"}, fallback=PeerError
    )
    assert type(back) is PeerError
    assert (back.code, back.http_status, back.openai_type) == ("brand_new", 418, "teapot")
    crashed = from_wire({"code": "weird", "message": "?"}, fallback=BackendCrashed)
    assert isinstance(crashed, BackendCrashed)
    # The root's code names no kind: the receiver's fallback decides what it is.
    assert type(from_wire(AriaError("x").to_wire(), fallback=PeerError)) is PeerError


def test_back_pressure_keeps_its_retry_after() -> None:
    back = from_wire(ServerBusy("full", retry_after_s=7.5).to_wire())
    assert isinstance(back, ServerBusy) and back.retry_after_s == 7.5 and back.http_status == 503


@pytest.mark.parametrize(
    "wire",
    [
        {},
        {"code": 5, "message": None, "param": ["x"], "status": "400", "type": {}},
        {"code": "x" * 10_000, "message": "y" * 100_000, "param": "z" * 10_000},
        {"code": "rate_limit_exceeded", "retry_after_s": float("inf")},
        {"code": "invalid_request", "status": 200},
        {"code": "invalid_request", "status": True},
    ],
)
def test_hostile_wire_forms_give_a_bounded_error(wire: dict[str, object]) -> None:
    back = from_wire(wire, fallback=PeerError)
    assert isinstance(back, AriaError)
    assert 400 <= back.http_status <= 599 and len(back.code) <= 64
    assert 0 < len(back.message) <= 2000 and (back.param is None or len(back.param) <= 256)
    if isinstance(back, RateLimited):
        assert back.retry_after_s == 1.0


def test_only_availability_errors_fall_back() -> None:
    availability: list[type[AriaError]] = [ModelNotInstalled, BackendUnavailable, BackendCrashed]
    availability.append(PeerError)
    availability += [ConsentRefused, PlacementRefused]
    assert all(cls.falls_back for cls in availability)
    request: list[type[AriaError]] = [InvalidRequest, ContextLengthExceeded, RateLimited]
    request += [RequestFailed, AriaError]
    assert not any(cls.falls_back for cls in request)
    assert "from_wire" in errors.__all__
