"""Typed access to what :func:`aria.api.manage.install` put on ``app.state``."""

from __future__ import annotations

from typing import TYPE_CHECKING

from fastapi import Request

from aria.api.metrics import Metrics
from aria.node import Node

if TYPE_CHECKING:
    from aria.api.manage.events import EventHub

__all__ = ["hub_of", "metrics_of", "node_of"]


def node_of(request: Request) -> Node:
    node: Node = request.app.state.node
    return node


def metrics_of(request: Request) -> Metrics:
    metrics: Metrics = request.app.state.metrics
    return metrics


def hub_of(request: Request) -> EventHub:
    hub: EventHub = request.app.state.events
    return hub
