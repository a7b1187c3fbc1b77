"""The published OpenAPI document matches the code."""

from __future__ import annotations

import json
from pathlib import Path

from aria.api.openapi import render

DOC = Path(__file__).resolve().parents[2] / "docs" / "openapi.json"


def test_docs_openapi_json_is_up_to_date() -> None:
    assert DOC.read_text(encoding="utf-8") == render(), (
        "docs/openapi.json is stale: run `python -m aria.api.openapi`"
    )


def test_document_describes_every_endpoint() -> None:
    paths = json.loads(DOC.read_text(encoding="utf-8"))["paths"]
    assert set(paths) == {
        "/v1/chat/completions",
        "/v1/completions",
        "/v1/embeddings",
        "/v1/models",
        "/health",
        "/metrics",
        "/v1/memory",
        "/v1/memory/search",
        "/v1/memory/export",
        "/v1/memory/import",
        "/v1/memory/reminders",
        "/v1/memory/reminders/deliver",
        "/v1/memory/{memory_id}",
        # the management API behind the dashboard (docs/dashboard.md)
        "/api/events",
        "/api/hardware",
        "/api/profile",
        "/api/consent",
        "/api/keys",
        "/api/keys/{key_id}",
        "/api/catalog",
        "/api/models/{model_id}/download",
        "/api/downloads/{model_id}",
        "/api/models/{model_id}/verify",
        "/api/models/{model_id}",
        "/api/models/inspect",
        "/api/models/import",
        "/api/network",
        "/api/network/events",
        "/api/bench",
        "/api/bench/results/{name}",
    }
    chat = paths["/v1/chat/completions"]["post"]
    assert {"400", "401", "404", "413", "422", "503"} <= set(chat["responses"])
    assert "ChatCompletionRequest" in json.dumps(chat["requestBody"])
    profile = paths["/api/profile"]["put"]
    assert {"400", "401", "403", "415", "422"} <= set(profile["responses"])
    assert "ProfileChange" in json.dumps(profile["requestBody"])
