"""``/api/hardware``, ``/api/profile``, ``/api/consent``, ``/api/keys`` and ``/api/events``.

The dashboard's node view: what the machine is, which tiers the profile turns on (a
change is written to ``config.toml`` like ``aria node profile set`` and applies to the
next request at once), the signed consent contract (a change is signed and applied like
``aria node share``), and the API keys (a new
key's secret is in the creating response only).
"""

from __future__ import annotations

from typing import Annotated, Any

import anyio
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictFloat, StrictInt

from aria.api.errors import UnprocessableRequest
from aria.api.manage.context import hub_of, node_of
from aria.api.manage.events import sse_response
from aria.api.manage.network import CONTROL_TIMEOUT_S
from aria.apikeys import KeyStore
from aria.config import update_settings
from aria.consent import ContractBook, InForce, share_descriptions, shares_of, with_shares
from aria.errors import ContractError, InvalidRequest
from aria.hardware import hardware_report
from aria.node import Node
from aria.p2p.consent_change import current_contract, sign_and_apply
from aria.p2p.identity import load_or_create_identity
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


class ShareChange(BaseModel):
    """``PUT /api/consent``: the clauses to change, under the names of ``aria node share``
    (the contract checks the bounds; see :mod:`aria.consent.shares`)."""

    model_config = ConfigDict(extra="forbid")
    share_inference: StrictBool | None = None
    max_remote_jobs: StrictInt | None = None
    max_remote_tokens: StrictInt | None = None
    use_peers: StrictBool | None = None
    share_rpc: StrictBool | None = None
    rpc_memory_gb: StrictFloat | StrictInt | None = None
    rpc_peers: list[Annotated[str, Field(max_length=128)]] | None = Field(
        default=None, max_length=256
    )
    rpc_min_reputation: StrictFloat | StrictInt | None = None
    share_library: StrictBool | None = None


def _consent(loaded: InForce) -> dict[str, Any]:
    contract = loaded.contract
    return {
        "version": contract.version,
        "sha256": loaded.sha256,
        "signed": loaded.signed,
        "problem": loaded.problem,
        "settings": shares_of(contract),
        "descriptions": share_descriptions(),
        "contract": contract.model_dump(mode="json"),
    }


@router.get("/consent")
async def get_consent(request: Request) -> JSONResponse:
    """The signed consent contract in force (made from ``[consent]`` on first use): its
    version, hash and clauses, and the ones the dashboard shows under plain names."""
    node = node_of(request)
    loaded = await anyio.to_thread.run_sync(current_contract, node.paths, node.settings)
    return JSONResponse(_consent(loaded))


@router.put("/consent")
async def set_consent(body: ShareChange, request: Request) -> JSONResponse:
    """Change clauses as ``aria node share`` does: the next contract version is signed
    with the node's key, saved, recorded in the ledger and sent to the node running on
    this home, which applies it at once (``running_node``: ``null`` when no node runs or
    nothing changed, else whether it applied it)."""
    node = node_of(request)
    changes = body.model_dump(exclude_unset=True)

    def change() -> tuple[InForce, dict[str, Any] | None]:
        loaded = current_contract(node.paths, node.settings)
        try:
            changed = with_shares(loaded.contract, changes)
        except ContractError as exc:
            raise UnprocessableRequest(exc.message, param=exc.param) from None
        if changed == loaded.contract:
            return loaded, None
        applied = sign_and_apply(node.paths, node.settings, changed, timeout_s=CONTROL_TIMEOUT_S)
        if node.contracts is None:  # this API follows the signed contract from now on
            signer = load_or_create_identity(node.paths).peer_id
            node.contracts = ContractBook(node.paths, signer, fallback=applied.in_force.contract)
        return applied.in_force, applied.running

    loaded, running = await anyio.to_thread.run_sync(change)
    payload = _consent(loaded)
    hub_of(request).publish("consent", {"version": loaded.contract.version, **payload["settings"]})
    return JSONResponse({**payload, "running_node": running})


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
