"""The SmartRouter: which model serves a request that names none (or ``auto``).

``route(RouteRequest.from_openai(body), table, available)`` is pure and deterministic: the
classifier (rules plus a small linear model over hashed n-grams) gives the category, the
routing table (data, ``data/routing.toml``, overridable in ``ARIA_HOME/routing.toml``)
the preferred models, and ``available`` what this node can run, here or on its peers.
The result is the fallback chain the executor walks, each entry saying where it runs
(``placement``: local, on a peer, split over peers); ``place_named`` does the same for a
model the request names. This is the node's one placement decision. ``loader`` is the only module
that reads files; ``train`` (scikit-learn, development only) is not imported here.
"""

from aria.router.categories import STRUCTURAL_CATEGORIES, TEXT_CATEGORIES, Category
from aria.router.classifier import Classification, QueryClassifier, classify_query
from aria.router.decision import Availability, RoutingDecision, place_named, route
from aria.router.loader import load_classifier, load_dataset, load_routing_table
from aria.router.placement import (
    PREFERENCES,
    ChainEntry,
    Local,
    OnPeer,
    Preference,
    Split,
    Where,
    parse_preference,
)
from aria.router.request import RouteRequest, estimate_tokens
from aria.router.table import RoutingLimits, RoutingTable

__all__ = [
    "PREFERENCES",
    "STRUCTURAL_CATEGORIES",
    "TEXT_CATEGORIES",
    "Availability",
    "Category",
    "ChainEntry",
    "Classification",
    "Local",
    "OnPeer",
    "Preference",
    "QueryClassifier",
    "RouteRequest",
    "RoutingDecision",
    "RoutingLimits",
    "RoutingTable",
    "Split",
    "Where",
    "classify_query",
    "estimate_tokens",
    "load_classifier",
    "load_dataset",
    "load_routing_table",
    "parse_preference",
    "place_named",
    "route",
]
