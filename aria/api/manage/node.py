"""``/api/hardware``, ``/api/profile``, ``/api/consent``, ``/api/keys`` and ``/api/events``.

The dashboard's node view: what the machine is, which tiers the profile turns on (a
change is written to ``config.toml`` like ``aria node profile set`` and applies to the
next request at once), what the operator consents to share, and the API keys (a new
key's secret is in the creating response only).
"""

from __future__ import annotations

from typing import Any

import anyio
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field, StrictBool, ValidationError

from aria.api.errors import UnprocessableRequest
from aria.api.manage.context import hub_of, node_of
from aria.api.manage.events import sse_response
from aria.api.manage.network import apply_consent
from aria.apikeys import KeyStore
from aria.config import ConsentSettings, update_settings
from aria.errors import InvalidRequest
from aria.hardware import hardware_report
from aria.node import Node
from aria.profiles import PROFILES, describe_profiles

__all__ = ["router"]

router = APIRouter(tags=["node"])


class ProfileChange(BaseModel):
    model_config = ConfigDict(extra="forbid")
    profile: str = Field(max_length=64, description="A profile preset name.")


class KeyCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=64, description="A label for the key.")


class KeyChange(BaseModel):
    model_config = ConfigDict(extra="forbid")
    memory: StrictBool = Field(description="Requests with this key use their own memory.")


@router.get("/events", response_class=StreamingResponse)
async def events(request: Request) -> StreamingResponse:
    """Server-sent events: ``download``, ``models``, ``profile``, ``consent``, ``keys``,
    ``bench`` (one JSON object each), and a comment line as keep-alive when idle."""
    return sse_response(hub_of(request).stream())


@router.get("/hardware")
async def hardware(request: Request) -> JSONResponse:
    """CPU, ISA features, memory, GPUs and NPUs, and what they mean for each tier."""
    return JSONResponse(hardware_report(node_of(request).hardware))


def _profile(node: Node) -> dict[str, Any]:
    described = describe_profiles(
        node.settings.node.profile, gpu_available=node.hardware.gpu_available
    )
    resolution = node.resolve(None)
    described["auto"] = {"candidates": list(resolution.candidates), "notice": resolution.notice}
    return described


@router.get("/profile")
async def get_profile(request: Request) -> JSONResponse:
    """The active profile, the tiers of every preset here, and what ``auto`` picks now."""
    return JSONResponse(_profile(node_of(request)))


@router.put("/profile")
async def set_profile(body: ProfileChange, request: Request) -> JSONResponse:
    """Switch profile: saved in ``config.toml`` and used from the next request on.

    When ``ARIA_NODE__PROFILE`` is set, it still wins (``overridden`` says so).
    """
    if body.profile not in PROFILES:
        raise InvalidRequest(
            f"unknown profile {body.profile!r}; choose one of: {', '.join(PROFILES)}",
            param="profile",
        )
    node = node_of(request)
    saved = await anyio.to_thread.run_sync(
        update_settings, node.paths, {"node": {"profile": body.profile}}
    )
    node.settings.node.profile = saved.node.profile
    payload = _profile(node)
    payload["overridden"] = saved.node.profile != body.profile
    hub_of(request).publish("profile", {"active": saved.node.profile})
    return JSONResponse(payload)


def _consent(node: Node) -> dict[str, Any]:
    fields = ConsentSettings.model_fields
    return {
        "settings": node.settings.consent.model_dump(mode="json"),
        "descriptions": {name: field.description for name, field in fields.items()},
    }


@router.get("/consent")
async def get_consent(request: Request) -> JSONResponse:
    """What this node shares with peers and whether it may send prompts to them."""
    return JSONResponse(_consent(node_of(request)))


@router.put("/consent")
async def set_consent(body: dict[str, Any], request: Request) -> JSONResponse:
    """Change some consent settings (same names and bounds as ``[consent]`` in config):
    saved, then sent to a running node, which applies them at once (``running_node``:
    ``null`` when no node runs, else whether it applied them)."""
    node = node_of(request)
    try:
        merged = ConsentSettings.model_validate({**node.settings.consent.model_dump(), **body})
    except ValidationError as exc:
        first = exc.errors()[0]
        param = ".".join(str(part) for part in first["loc"]) or None
        raise UnprocessableRequest(f"{param}: {first['msg']}", param=param) from None
    changes = {name: getattr(merged, name) for name in body}  # validated values, not raw
    saved = await anyio.to_thread.run_sync(update_settings, node.paths, {"consent": changes})
    node.settings.consent = saved.consent
    running = await apply_consent(node, changes) if changes else None
    hub_of(request).publish("consent", saved.consent.model_dump(mode="json"))
    return JSONResponse({**_consent(node), "running_node": running})


def _keys(request: Request) -> KeyStore:
    keys: KeyStore = request.app.state.keys
    return keys


@router.get("/keys")
async def list_keys(request: Request) -> JSONResponse:
    """The API keys (never their secrets), whether keys are required, and which key
    made this request."""
    return JSONResponse(
        {
            "keys": [key.public() for key in _keys(request).all()],
            "required": bool(request.app.state.require_keys),
            "current": getattr(request.state, "api_key_id", None),
        }
    )


@router.post("/keys", status_code=201)
async def create_key(body: KeyCreate, request: Request) -> JSONResponse:
    """A new key; its secret (``key``) is in this response only, never stored."""
    key, secret = await anyio.to_thread.run_sync(_keys(request).create, body.name)
    hub_of(request).publish("keys", {"created": key.id})
    return JSONResponse({**key.public(), "key": secret}, status_code=201)


@router.put("/keys/{key_id}")
async def change_key(key_id: str, body: KeyChange, request: Request) -> JSONResponse:
    """Turn a key's memory on or off (``aria api key memory``), by id or name."""
    changed = await anyio.to_thread.run_sync(_keys(request).set_memory, key_id, body.memory)
    hub_of(request).publish("keys", {"changed": changed.id})
    return JSONResponse(changed.public())


@router.delete("/keys/{key_id}")
async def revoke_key(key_id: str, request: Request) -> JSONResponse:
    """Revoke a key by id or name; requests using it are refused from now on."""
    revoked = await anyio.to_thread.run_sync(_keys(request).revoke, key_id)
    hub_of(request).publish("keys", {"revoked": revoked.id})
    return JSONResponse(revoked.public())
