"""``/api/catalog`` and ``/api/models/...``: the model library as the dashboard shows it.

Every action goes through the verified store (:class:`aria.store.ModelStore`), the
same code as ``aria model download/verify/rm/import``: downloads are jobs with live
progress (:mod:`aria.api.manage.downloads`), the rest answer when done. Imports name a
GGUF on this machine; ``/api/models/inspect`` reads its header first so the page can
ask the licence question in plain words before anything is copied.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anyio
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from aria.api.manage.context import hub_of, node_of
from aria.api.manage.downloads import Downloads
from aria.catalog.gate import Allowed, NeedsAcceptance, Use, evaluate
from aria.catalog.licences import CLASS_ALLOWS, classify, describe
from aria.errors import InvalidRequest, StoreError
from aria.node import Node
from aria.profiles import enabled_tiers
from aria.store.localmodel import model_id_from_path, read_gguf_info
from aria.store.records import listed_entries, model_record

__all__ = ["router"]

router = APIRouter(tags=["models"])


class DownloadOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")
    anyway: bool = Field(default=False, description="Download even if no engine here runs it.")


class LocalFile(BaseModel):
    model_config = ConfigDict(extra="forbid")
    path: str = Field(min_length=1, max_length=4096, description="A GGUF file on this machine.")


class ImportRequest(LocalFile):
    id: str | None = Field(default=None, max_length=128, description="Id to store it under.")
    accept_licence: bool = Field(
        default=False, description="The operator accepts a yellow licence's terms (local use)."
    )


def _downloads(request: Request) -> Downloads:
    downloads: Downloads = request.app.state.downloads
    return downloads


def _catalog(node: Node, downloads: Downloads) -> dict[str, Any]:
    installed = {model.model_id: model for model in node.store.installed()}
    tiers = enabled_tiers(node.settings.node.profile, gpu_available=node.hardware.gpu_available)
    bitnet = node.bitnet_server is not None
    models = []
    for entry in listed_entries(node.catalog, installed):
        info = describe(entry.licence)
        record = model_record(entry, installed.get(entry.id), bitnet_cpp=bitnet)
        record["licence_summary"] = info.summary if info else "a licence ARIA does not know"
        record["routable"] = entry.tier in tiers
        models.append(record)
    return {
        "models": models,
        "default_model": node.catalog.default_model_id,
        "profile": node.settings.node.profile,
        "tiers_enabled": [tier.value for tier in tiers],
        "licence_classes": {cls.value: text for cls, text in CLASS_ALLOWS.items()},
        "downloads": downloads.snapshot(),
    }


@router.get("/catalog")
async def catalog(request: Request) -> JSONResponse:
    """Every catalog model (and imports): tier, size, licence class, installed state,
    whether it runs here and whether the profile routes to it; running downloads."""
    node = node_of(request)
    payload = await anyio.to_thread.run_sync(_catalog, node, _downloads(request))
    return JSONResponse(payload)


@router.post("/models/{model_id}/download", status_code=202)
async def download(model_id: str, body: DownloadOptions, request: Request) -> JSONResponse:
    """Start downloading a catalog model; progress arrives as ``download`` events."""
    state = _downloads(request).start(model_id, anyway=body.anyway)
    return JSONResponse(state.as_dict(), status_code=202)


@router.delete("/downloads/{model_id}")
async def cancel_download(model_id: str, request: Request) -> JSONResponse:
    """Stop a running download (the bytes so far are kept: downloading again resumes)."""
    return JSONResponse(_downloads(request).cancel(model_id).as_dict())


@router.post("/models/{model_id}/verify")
async def verify(model_id: str, request: Request) -> JSONResponse:
    """Re-hash an installed model; a file that fails is removed from the store."""
    results = await anyio.to_thread.run_sync(node_of(request).store.verify, model_id)
    hub_of(request).publish("models", {"changed": model_id})
    records = [{"id": r.model_id, "ok": r.ok, "detail": r.detail} for r in results]
    return JSONResponse({"results": records})


@router.delete("/models/{model_id}")
async def remove(model_id: str, request: Request) -> JSONResponse:
    """Delete an installed model's file, manifest and any partial download."""
    node = node_of(request)
    await anyio.to_thread.run_sync(node.store.remove, model_id)
    hub_of(request).publish("models", {"changed": model_id})
    return JSONResponse({"removed": node.store.canonical_id(model_id)})


def _local_file(text: str) -> Path:
    path = Path(text).expanduser()
    if not path.is_file():
        raise InvalidRequest(f"{path} is not a file on this machine", param="path")
    return path.resolve()


def _inspect(path: Path) -> dict[str, Any]:
    try:
        info = read_gguf_info(path)
    except StoreError as exc:
        raise InvalidRequest(exc.message, param="path") from None
    licence = info.licence
    if licence is None:
        verdict = "refused"
        message = (
            f"{path.name} declares no licence, and ARIA imports only files whose licence "
            "it can check."
        )
    else:
        match evaluate(licence, Use.LOCAL_IMPORT):
            case Allowed():
                verdict, message = "allowed", f"{path.name} is under {licence}: free to use here."
            case NeedsAcceptance():
                verdict = "needs_acceptance"
                message = (
                    f"{path.name} is under {licence}, a licence with conditions. ARIA can run it "
                    "on this machine only, after you accept its terms; it is never shared with "
                    "peers. Have you read its terms, and do you accept them?"
                )
            case _:
                verdict, message = (
                    "refused",
                    f"ARIA refuses {licence}: {CLASS_ALLOWS[classify(licence)]}.",
                )
    info_row = describe(licence) if licence else None
    return {
        "path": str(path),
        "size_bytes": path.stat().st_size,
        "suggested_id": model_id_from_path(path),
        "architecture": info.architecture,
        "name": info.name,
        "quantization": info.quantization,
        "parameters": info.parameters,
        "licence": licence,
        "licence_class": classify(licence).value if licence else "red",
        "licence_summary": info_row.summary if info_row else None,
        "verdict": verdict,
        "question": message,
    }


@router.post("/models/inspect")
async def inspect(body: LocalFile) -> JSONResponse:
    """What a local GGUF declares (no hashing, nothing copied) and whether its licence
    needs the operator's acceptance (``verdict``: allowed, needs_acceptance, refused)."""
    path = _local_file(body.path)
    return JSONResponse(await anyio.to_thread.run_sync(_inspect, path))


@router.post("/models/import", status_code=201)
async def import_file(body: ImportRequest, request: Request) -> JSONResponse:
    """Copy a local GGUF into the store (hash, denylist, licence gate, as the CLI)."""
    node = node_of(request)
    path = _local_file(body.path)

    def work() -> dict[str, Any]:
        try:
            model = node.store.import_file(
                path, model_id=body.id or None, accept_license=body.accept_licence
            )
        except StoreError as exc:
            if type(exc) is StoreError:  # the file or the id, not the store's health
                raise InvalidRequest(exc.message, param="path") from None
            raise
        return model_record(model.entry, model, bitnet_cpp=node.bitnet_server is not None)

    record = await anyio.to_thread.run_sync(work)
    hub_of(request).publish("models", {"changed": record["id"]})
    return JSONResponse(record, status_code=201)
