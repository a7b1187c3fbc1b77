"""Prometheus metrics of one API instance (its own registry: no global state).

Request and token counters are updated by the routes; backend states and queue
depths are read from the dispatcher at scrape time, so they are never stale.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from aria.backends import Dispatcher, DoneEvent
from aria.backends.states import Busy, Failed, Loading, Ready, Starting, state_name
from aria.energy import EnergyReading

__all__ = ["PEER_REQUEST_HEADER", "CountRequests", "Metrics", "RequestTracker"]

# Sent by this machine's node when it forwards a peer's request to the API (a counter
# only: it grants nothing).
PEER_REQUEST_HEADER = "x-aria-peer-request"

_STATES = tuple(state_name(s) for s in (Starting(), Loading(), Ready(), Busy(), Failed("")))
_TTFT_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
_TPS_BUCKETS = (1, 2, 5, 10, 20, 35, 50, 75, 100, 150, 200, 300, 500)


class _Backends(Collector):
    def __init__(self, dispatcher: Dispatcher) -> None:
        self._dispatcher = dispatcher

    def collect(self) -> Iterator[Metric]:
        views = self._dispatcher.backends()
        depth = GaugeMetricFamily(
            "aria_backend_queue_depth",
            "Requests waiting for or running on a backend.",
            labels=["model"],
        )
        states = GaugeMetricFamily(
            "aria_backend_state", "1 for the state each backend is in.", labels=["model", "state"]
        )
        slots = GaugeMetricFamily(
            "aria_backend_slots", "Requests a backend decodes together.", labels=["model"]
        )
        active = GaugeMetricFamily(
            "aria_backend_active_requests", "Requests a backend is decoding now.", labels=["model"]
        )
        kv = GaugeMetricFamily(
            "aria_backend_kv_cache_bytes",
            "K/V cache of a backend's slots (their memory budget).",
            labels=["model"],
        )
        for view in views:
            depth.add_metric([view.model_id], view.queued)
            active.add_metric([view.model_id], view.active)
            if view.slots is not None:
                slots.add_metric([view.model_id], view.slots)
            if view.kv_bytes is not None:
                kv.add_metric([view.model_id], view.kv_bytes)
            for state in _STATES:
                states.add_metric([view.model_id, state], 1.0 if view.state == state else 0.0)
        events = CounterMetricFamily(
            "aria_backend_events", "Backend starts, crashes and unloads.", labels=["event"]
        )
        for event, count in sorted(self._dispatcher.events.items()):
            events.add_metric([event], count)
        yield depth
        yield states
        yield slots
        yield active
        yield kv
        yield events


class _Energy(Collector):
    """Joules spent on generations and the tokens they produced, per model and method
    (``rapl``: measured; ``estimate``: CPU time x TDP per core), and tokens per joule."""

    def __init__(self) -> None:
        self._joules: dict[tuple[str, str], float] = {}
        self._tokens: dict[tuple[str, str], int] = {}

    def add(self, model: str, done: DoneEvent, energy: EnergyReading) -> None:
        key = (model, energy.method)
        self._joules[key] = self._joules.get(key, 0.0) + energy.joules
        tokens = done.prompt_tokens + done.completion_tokens
        self._tokens[key] = self._tokens.get(key, 0) + tokens

    def collect(self) -> Iterator[Metric]:
        joules = CounterMetricFamily(
            "aria_energy_joules",
            "Energy spent generating (method rapl: measured; estimate: CPU time x TDP per core).",
            labels=["model", "method"],
        )
        rate = GaugeMetricFamily(
            "aria_tokens_per_joule",
            "Prompt and completion tokens per joule since the API started.",
            labels=["model", "method"],
        )
        for (model, method), value in sorted(self._joules.items()):
            joules.add_metric([model, method], value)
            if value > 0:
                rate.add_metric([model, method], self._tokens[(model, method)] / value)
        yield joules
        yield rate


class Metrics:
    """The API's metrics; ``render()`` is the ``/metrics`` body."""

    def __init__(self, dispatcher: Dispatcher) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter(
            "aria_requests", "HTTP requests.", ["endpoint", "status"], registry=r
        )
        self.errors = Counter("aria_errors", "Errors returned, by kind.", ["kind"], registry=r)
        self.tokens_in = Counter(
            "aria_prompt_tokens", "Prompt tokens processed.", ["model"], registry=r
        )
        self.tokens_out = Counter(
            "aria_completion_tokens", "Tokens generated.", ["model"], registry=r
        )
        self.tokens_cached = Counter(
            "aria_prompt_cached_tokens",
            "Prompt tokens reused from a slot's cache instead of recomputed.",
            ["model"],
            registry=r,
        )
        self.ttft = Histogram(
            "aria_time_to_first_token_seconds",
            "From request to first generated token.",
            ["model"],
            buckets=_TTFT_BUCKETS,
            registry=r,
        )
        self.tokens_per_second = Histogram(
            "aria_tokens_per_second",
            "Decode speed of each generation.",
            ["model"],
            buckets=_TPS_BUCKETS,
            registry=r,
        )
        self.fallbacks = Counter(
            "aria_fallbacks", "Fallback-chain candidates skipped.", ["model", "reason"], registry=r
        )
        self.route_decisions = Counter(
            "aria_route_decisions",
            "Requests routed by the SmartRouter, by category and the model that served.",
            ["category", "model"],
            registry=r,
        )
        self.peer_requests = Counter(
            "aria_peer_requests",
            "Chat requests that crossed the peer network: used (this node sent them to a "
            "peer, or split a model over peers) or served (a peer's request, forwarded by "
            "this machine's node).",
            ["direction", "kind"],
            registry=r,
        )
        self.energy = _Energy()
        r.register(_Backends(dispatcher))
        r.register(self.energy)

    def render(self) -> bytes:
        return generate_latest(self.registry)

    def peer_traffic(self) -> dict[str, int]:
        """``aria_peer_requests`` as ``{"used_remote", "used_split", "served_remote"}``."""
        return {
            f"{direction}_{kind}": int(
                self.registry.get_sample_value(
                    "aria_peer_requests_total", {"direction": direction, "kind": kind}
                )
                or 0
            )
            for direction, kind in (("used", "remote"), ("used", "split"), ("served", "remote"))
        }


class RequestTracker:
    """Times one generation: TTFT at the first token, tokens/s and usage at the end."""

    def __init__(self, metrics: Metrics, model: str, started: float) -> None:
        self._metrics = metrics
        self._model = model
        self._started = started
        self._first: float | None = None

    def token(self) -> None:
        if self._first is None:
            self._first = time.perf_counter()
            self._metrics.ttft.labels(self._model).observe(self._first - self._started)

    def done(self, done: DoneEvent | None, energy: EnergyReading | None = None) -> None:
        if done is None:
            return
        if energy is not None:
            self._metrics.energy.add(self._model, done, energy)
        self._metrics.tokens_in.labels(self._model).inc(done.prompt_tokens)
        self._metrics.tokens_out.labels(self._model).inc(done.completion_tokens)
        self._metrics.tokens_cached.labels(self._model).inc(done.cached_tokens)
        if self._first is not None and done.completion_tokens > 1:
            elapsed = time.perf_counter() - self._first
            if elapsed > 0:
                rate = (done.completion_tokens - 1) / elapsed
                self._metrics.tokens_per_second.labels(self._model).observe(rate)


_ENDPOINTS = frozenset(
    {
        "/v1/chat/completions",
        "/v1/completions",
        "/v1/embeddings",
        "/v1/models",
        "/health",
        "/metrics",
    }
)


class CountRequests:
    """ASGI middleware counting requests by endpoint and final status."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = 500

        async def observe(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, observe)
        finally:
            endpoint = scope["path"] if scope["path"] in _ENDPOINTS else "other"
            self.metrics.requests.labels(endpoint, str(status)).inc()
            forwarded = PEER_REQUEST_HEADER.encode() in dict(scope["headers"])
            if forwarded and status == 200 and endpoint == "/v1/chat/completions":
                self.metrics.peer_requests.labels("served", "remote").inc()
