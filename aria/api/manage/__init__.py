"""The node-management API under ``/api``: what the dashboard shows and changes.

* ``node``      -- hardware, profile, consent, API keys, and the live event stream;
* ``models``    -- the catalog with install state; download, verify, remove, import;
* ``downloads`` -- download jobs with progress, speed, ETA and cancel;
* ``network``   -- the P2P node's status and peers, through its control channel;
* ``bench``     -- ``aria bench`` runs and their results;
* ``events``    -- the in-process event hub behind the SSE streams;
* ``writes``    -- state-changing requests must be JSON (CSRF).

The same guards as the OpenAI endpoints apply (Host and Origin checks, API keys when
required, body limits). :func:`install` puts the services on ``app.state``;
:func:`services` runs their background jobs inside the app's lifespan.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import APIRouter, Depends, FastAPI

from aria.api.manage import bench, models, network, node
from aria.api.manage.bench import BenchJobs
from aria.api.manage.downloads import Downloads
from aria.api.manage.events import EventHub
from aria.api.manage.writes import json_writes
from aria.node import Node

__all__ = ["ERROR_RESPONSES", "install", "router", "services"]

ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: {"description": "Invalid request (OpenAI error object)"},
    401: {"description": "Missing or invalid API key"},
    403: {"description": "A browser origin that is not allowed"},
    404: {"description": "No such model, key, download or result"},
    409: {"description": "Conflicts with the current state (a job already running, a name taken)"},
    415: {"description": "A change that is not sent as JSON"},
    421: {"description": "A Host name this keyless API does not answer to"},
    422: {"description": "A field has the wrong type or range"},
}

router = APIRouter(prefix="/api", dependencies=[Depends(json_writes)], responses=ERROR_RESPONSES)
for _module in (node, models, network, bench):
    router.include_router(_module.router)


def install(app: FastAPI, node: Node) -> None:
    """The event hub, the download jobs and the benchmark runs of ``app``."""
    hub = EventHub()
    app.state.events = hub
    app.state.downloads = Downloads(node, hub)
    app.state.bench = BenchJobs(node, hub)


@asynccontextmanager
async def services(app: FastAPI) -> AsyncIterator[None]:
    """Run the jobs of :func:`install` while the app serves (its lifespan)."""
    async with app.state.downloads.running(), app.state.bench.running():
        yield
